"""Time to quality: quality against steps and against seconds per class, for ours, Xplique's MACO
and the Fourier baseline, in both directions (EfficientNet-Lite0 <-> MobileNetV2).

Each point is its own run: our learning rate decays over `nb_steps`, so a 32-step image is not
a snapshot of a 256-step run. Every point is a `compare.py quality` part (one seed, all classes,
scored as every quality part is: source top-1, judge top-1/top-5, the low-pass judge, the share
of photo-like spectra), computed in its own process and cached in results/parts/curve_*.json with
its images beside it (.npz, not committed); rerunning computes only the missing points. Names
carry the number of classes, so a pilot on fewer classes and the full run live side by side.

Seconds come from one timing part per source model, measured side by side in one process
(interleaved repeats): each method's cost of a call with 1 step and with 1 + n steps gives its
per-call set-up (tracing included) and its per-step time. Ours and the Fourier baseline render
all classes in one batched call, Xplique one class per call (it takes one objective per call),
so seconds per class at S steps = (set-up + (S - 1) x step) / classes per call. The quality
runs' own wall times are not used: this machine is shared and its load varies by 3x.

    python -m benchmarks.curves run --steps 16 32 64 128 256 --classes 16 --seeds 2
    python -m benchmarks.curves run --only ours --steps 32      # some points only
    python -m benchmarks.curves report         # curves.md, curves.json, curves_c<classes>.png
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from ._shared.methods import METHODS, NAMES, render_classes  # noqa: E402
from ._shared.models import CLASSES, JUDGES, load  # noqa: E402
from ._shared.parts import part_command, quality_arguments  # noqa: E402
from ._shared.results import PARTS, RESULTS  # noqa: E402
from ._shared.timing import call_times  # noqa: E402

STEPS = (16, 32, 64, 128, 256)
# Ours without glances (maco(glance=0), the defaults before glances), ours at the defaults
# (maco's default glance), and the anchors. The codes name the cached parts; NAMES what reports show.
CURVE_METHODS = ("ours", "ours_glance", *(m for m in METHODS if m != "ours"))
STYLES = {
    "ours": ("tab:blue", "o-"),
    "ours_glance": ("tab:purple", "s--"),
    "xplique": ("tab:orange", "o-"),
    "fourier": ("tab:green", "o-"),
}
# What "good" means in the report, per direction: every figure at or above its threshold.
# The rates are shares of images; the fine detail is a kurtosis (3 for noise, the photos' range in
# the quality section), missing (None) for points scored before it was measured.
FINE = "fine_detail_median"
TARGETS = {"source_top1": 0.95, "judge_top5": 0.95, "lowpass_top5": 0.8, "hf_in_photo_range": 0.9, FINE: 8.0}
FIGURES = {
    "source_top1": "source top-1",
    "judge_top1": "judge top-1",
    "judge_top5": "judge top-5",
    "lowpass_top5": "low-pass judge top-5",
    "hf_in_photo_range": "photo-like spectrum",
    FINE: "fine detail (kurtosis)",
}
# Time to quality is also reported without the fine detail: its points are not all measured yet.
EARLIER_TARGETS = [key for key in TARGETS if key != FINE]
EQUAL_COMPUTE = {"crops": 8, "size": 256}


def part_name(source: str, method: str, steps: int, classes: int, seed: int) -> str:
    return f"curve_{source}_{method}_{steps}_c{classes}_seed{seed}"


def _matches(path: Path, classes: int) -> bool:
    """The cached point exists and was computed on the first `classes` benchmark classes."""
    return path.exists() and json.loads(path.read_text())["settings"]["classes"] == CLASSES[:classes]


def run_points(args) -> None:
    """Computes the missing points, each `compare.py quality` in its own process."""
    PARTS.mkdir(parents=True, exist_ok=True)
    methods = args.only or CURVE_METHODS
    equal_compute = ["--crops", str(EQUAL_COMPUTE["crops"]), "--size", str(EQUAL_COMPUTE["size"])]
    for steps, seed, source, method in itertools.product(
        args.steps, range(args.seeds), args.sources, methods
    ):
        name = part_name(source, method, steps, args.classes, seed)
        path = PARTS / f"{name}.json"
        if _matches(path, args.classes) and name not in args.redo:
            continue
        arguments = quality_arguments(source, method, seed, args.classes, steps, PARTS / f"{name}.npz")
        started = time.perf_counter()
        done = subprocess.run(part_command(arguments + equal_compute), capture_output=True, text=True)
        if done.returncode:  # the other points still run; a rerun retries this one
            print(f"{name} failed:\n{done.stderr[-2000:]}", flush=True)
            continue
        path.write_text(done.stdout.strip().splitlines()[-1])
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)


def timing(args) -> dict:
    """Per-call set-up and per-step seconds of the three methods on one source model, interleaved."""
    model = load(args.model)
    classes = CLASSES[: args.classes]
    crops, size = EQUAL_COMPUTE["crops"], EQUAL_COMPUTE["size"]
    # Ours and the Fourier baseline render all classes in one call, Xplique one class a call.
    per_call = {"ours": classes, "ours_glance": classes, "fourier": classes, "xplique": classes[:1]}
    calls = {
        name: lambda n, name=name, rendered=rendered: render_classes(name, model, rendered, 0, n, crops, size)
        for name, rendered in per_call.items()
    }
    for call in calls.values():
        call(1)  # first calls trace what later calls reuse (the zoo model, Xplique's own graphs)
    short, long = call_times(calls, args.probe_steps, args.repeats)
    result = {"model": args.model, "classes": len(classes), "probe_steps": args.probe_steps, "methods": {}}
    for name in calls:
        one, more = statistics.median(short[name]), statistics.median(long[name])
        step = (more - one) / args.probe_steps
        result["methods"][name] = {
            "classes_per_call": len(per_call[name]),
            "setup_s": one - step,
            "step_s": step,
            "short_runs": short[name],
            "long_runs": long[name],
        }
    return result


def seconds_per_class(timings: dict, method: str, steps: int) -> float:
    t = timings["methods"][method]
    return (t["setup_s"] + steps * t["step_s"]) / t["classes_per_call"]


def measured_steps(source: str, method: str, classes: int) -> list[int]:
    """The step counts with a cached point of this method (STEPS, and any other count run)."""
    pattern = re.compile(rf"curve_{source}_{method}_(\d+)_c{classes}_seed\d+\.json")
    return sorted(
        {int(m.group(1)) for path in PARTS.glob("curve_*.json") if (m := pattern.fullmatch(path.name))}
    )


def collect(args) -> dict:
    """The cached points pooled over seeds (mean of the per-seed rates: every seed has the same
    classes), and the timing parts."""
    points = []
    for source in args.sources:
        for method in CURVE_METHODS:
            for steps in measured_steps(source, method, args.classes):
                runs = []
                for seed in range(args.seeds):
                    path = PARTS / f"{part_name(source, method, steps, args.classes, seed)}.json"
                    if _matches(path, args.classes):
                        runs.append(json.loads(path.read_text()))
                if not runs:
                    continue
                point = {"source": source, "judge": JUDGES[source], "method": method, "steps": steps}
                point["seeds"] = [run["settings"]["seeds"][0] for run in runs]
                point["images"] = sum(run["images"] for run in runs)
                for key in FIGURES:
                    values = [run[key] for run in runs if key in run]
                    point[key] = float(np.mean(values)) if len(values) == len(runs) else None
                points.append(point)
    timings = {}
    for source in args.sources:
        path = PARTS / f"curve_timing_{source}_c{args.classes}.json"
        if path.exists() and json.loads(path.read_text())["classes"] == args.classes:
            timings[source] = json.loads(path.read_text())
    for point in points:
        if point["source"] in timings and point["method"] in timings[point["source"]]["methods"]:
            point["seconds_per_class"] = seconds_per_class(
                timings[point["source"]], point["method"], point["steps"]
            )
    return {"points": points, "timings": timings, "targets": TARGETS}


def holds(point: dict, key: str) -> bool:
    """Whether a point meets one target (a figure it was not scored on does not)."""
    return point[key] is not None and point[key] >= TARGETS[key]


def meets(point: dict, keys=TARGETS) -> bool:
    return all(holds(point, key) for key in keys)


def cell(key: str, value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key == FINE else f"{value:.0%}"


def first_reached(curves: dict) -> list[dict]:
    """Per direction and method, the fewest measured steps at which each target (and all of
    them together) holds: time to quality in steps and in seconds per class."""
    rows = []
    directions = sorted({p["source"] for p in curves["points"]})
    for source in directions:
        for method in CURVE_METHODS:
            line = sorted(
                (p for p in curves["points"] if p["source"] == source and p["method"] == method),
                key=lambda p: p["steps"],
            )
            if not line:
                continue
            row = {"source": source, "judge": JUDGES[source], "method": method}
            row["measured"] = [p["steps"] for p in line]
            checks = {key: (lambda p, key=key: holds(p, key)) for key in TARGETS}
            checks["all"] = meets
            checks["earlier"] = lambda p: meets(p, EARLIER_TARGETS)
            for name, check in checks.items():
                # Reached at S steps when it holds at S and at every measured count above S
                # (a rate that dips again later was not reached for good).
                reached = None
                for point in reversed(line):
                    if not check(point):
                        break
                    reached = point
                row[name] = (
                    None
                    if reached is None
                    else {"steps": reached["steps"], "seconds_per_class": reached.get("seconds_per_class")}
                )
            if all(point[FINE] is None for point in line):
                row[FINE] = row["all"] = "not measured"
            rows.append(row)
    return rows


def _reached_cell(reached: dict | str | None) -> str:
    if isinstance(reached, str):
        return reached
    if reached is None:
        return "not reached"
    seconds = reached["seconds_per_class"]
    return f"{reached['steps']}" + (f" ({seconds:.1f} s)" if seconds is not None else "")


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    sources = sorted({p["source"] for p in curves["points"]})
    axes_x = [("steps", "steps"), ("seconds_per_class", "seconds per class")]
    rows = [(source, x) for x in axes_x for source in sources]
    figure, axes = plt.subplots(
        len(rows), len(FIGURES), figsize=(3.1 * len(FIGURES), 2.6 * len(rows)), squeeze=False
    )
    for r, (source, (x_key, x_label)) in enumerate(rows):
        for c, (key, label) in enumerate(FIGURES.items()):
            axis = axes[r, c]
            for method in CURVE_METHODS:
                line = [p for p in curves["points"] if p["source"] == source and p["method"] == method]
                line = [p for p in line if x_key in p and p[key] is not None]
                if not line:
                    continue
                axis.plot(
                    [p[x_key] for p in line],
                    [p[key] for p in line],
                    STYLES[method][1],
                    color=STYLES[method][0],
                    label=NAMES.get(method, method),
                )
            if key in TARGETS:
                axis.axhline(TARGETS[key], color="grey", linestyle=":", linewidth=1)
            axis.set_xscale("log", base=2)
            axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            if key == FINE:
                axis.set_ylim(bottom=0.0)
            else:
                axis.set_ylim(-0.03, 1.03)
            axis.set_xlabel(x_label, fontsize=8)
            axis.tick_params(labelsize=7)
            if r == 0:
                axis.set_title(label, fontsize=9)
            if c == 0:
                axis.set_ylabel(f"{source} ->\n{JUDGES[source]}", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def points_table(curves: dict) -> list[str]:
    """Every point of one number of classes: its figures, and whether it meets every target."""
    lines = [
        "| source -> judge | method | steps | images | s/class | "
        + " | ".join(FIGURES.values())
        + " | all targets |",
        "|---|---|---|---|---|" + "---|" * len(FIGURES) + "---|",
    ]
    for p in curves["points"]:
        seconds = f"{p['seconds_per_class']:.1f}" if "seconds_per_class" in p else "-"
        cells = " | ".join(cell(key, p[key]) for key in FIGURES)
        lines.append(
            f"| {p['source']} -> {p['judge']} | {NAMES.get(p['method'], p['method'])} | {p['steps']} | {p['images']} | {seconds} "
            f"| {cells} | {_meets_cell(p)} |"
        )
    return lines


def _meets_cell(point: dict) -> str:
    if point[FINE] is None:
        return "yes but fine detail not measured" if meets(point, EARLIER_TARGETS) else "no"
    return "yes" if meets(point) else "no"


def reached_table(curves: dict) -> list[str]:
    """Time to quality: per direction and method, where each target is reached for good."""
    lines = [
        "| source -> judge | method | steps measured | "
        + " | ".join(FIGURES[key] for key in TARGETS)
        + " | all but fine detail | all targets |",
        "|---|---|---|" + "---|" * len(TARGETS) + "---|---|",
    ]
    for row in first_reached(curves):
        cells = " | ".join(_reached_cell(row[key]) for key in [*TARGETS, "earlier", "all"])
        measured = ", ".join(str(steps) for steps in row["measured"])
        lines.append(
            f"| {row['source']} -> {row['judge']} | {NAMES.get(row['method'], row['method'])} | {measured} | {cells} |"
        )
    return lines


def timing_lines(curves: dict) -> list[str]:
    """Each timing part: set-up and step of every method, and ours per class against Xplique's."""
    lines = []
    for source, t in curves["timings"].items():
        methods = t["methods"]
        described = "; ".join(
            f"{name} {m['setup_s']:.1f} s set-up + {m['step_s']:.2f} s/step for {m['classes_per_call']} "
            f"class{'es' if m['classes_per_call'] > 1 else ''} a call"
            for name, m in methods.items()
        )
        lines += [
            "",
            f"Timing on {source} ({t['classes']} classes, medians of interleaved repeats): {described}.",
        ]
        theirs = seconds_per_class(t, "xplique", 128)
        for method in (m for m in ("ours_glance", "ours") if m in methods):
            ratios = ", ".join(
                f"{steps} steps {seconds_per_class(t, method, steps) / theirs:.2f}" for steps in STEPS
            )
            lines.append(
                f"{NAMES[method]}: per class over Xplique's per class at 128 steps ({theirs:.1f} s): {ratios}."
            )
    return lines


def markdown(curves: dict, picture: str) -> str:
    """One section: the points of one number of classes, their plot and tables."""
    seeds = f"{curves['seeds']} seed{'s' if curves['seeds'] > 1 else ''}"
    lines = [f"### {curves['classes']} classes x {seeds}", ""]
    lines += [
        f"Each point is its own run at {EQUAL_COMPUTE['crops']} crops and {EQUAL_COMPUTE['size']} px "
        "(`python -m benchmarks.curves run`, see its docstring); rates are over all classes and seeds "
        "of the point. Seconds per class come from a side-by-side timing of the three methods in one "
        "process (`python -m benchmarks.curves timing`), not from the points' own wall times. The "
        "low-pass judge sees each image shrunk to 64 px and back.",
        "",
        "Targets (dotted lines): "
        + ", ".join(f"{FIGURES[key]} >= {cell(key, value)}" for key, value in TARGETS.items())
        + ".",
        "",
        f"![quality against steps and seconds, {curves['classes']} classes]({picture})",
        "",
    ]
    lines += points_table(curves)
    lines += [
        "",
        "Time to quality: the fewest measured steps (and seconds per class) from which each target "
        'holds at every larger measured count; "not reached" if it fails at the largest one.',
        "",
    ]
    lines += reached_table(curves)
    lines += timing_lines(curves)
    return "\n".join(lines) + "\n"


def report(args) -> None:
    """curves.md (read by compare.py's report), curves.json, and one plot per number of classes
    that has points: the full run (--classes) first, then smaller pilots (--pilot-classes)."""
    sections, everything = ["## Quality against steps and seconds", ""], {}
    for classes in [args.classes, *args.pilot_classes]:
        args.classes = classes
        curves = {**collect(args), "classes": classes, "seeds": args.seeds}
        curves["first_reached"] = first_reached(curves)
        seeds = {seed for point in curves["points"] for seed in point["seeds"]}
        curves["seeds"] = len(seeds)
        if not curves["points"]:
            continue
        picture = f"curves_c{classes}.png"
        plot(curves, RESULTS / picture)
        sections.append(markdown(curves, picture))
        everything[f"c{classes}"] = curves
    (RESULTS / "curves.json").write_text(json.dumps(everything, indent=1))
    (RESULTS / "curves.md").write_text("\n".join(sections))
    print((RESULTS / "curves.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["run", "timing", "report"])
    parser.add_argument("--sources", nargs="+", default=list(JUDGES), choices=list(JUDGES))
    parser.add_argument("--model", default="efficientnet_lite0", choices=list(JUDGES), help="timing")
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    parser.add_argument("--only", nargs="+", choices=list(CURVE_METHODS), help="run: these methods only")
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--pilot-classes", type=int, nargs="*", default=[8], help="report: smaller runs too")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="timing: interleaved repeats")
    parser.add_argument("--probe-steps", type=int, default=8, help="timing: n of the 1 + n step call")
    parser.add_argument("--redo", nargs="*", default=[], help="run: recompute these parts")
    args = parser.parse_args()
    if args.part == "run":
        run_points(args)
    elif args.part == "timing":
        result = timing(args)
        PARTS.mkdir(parents=True, exist_ok=True)
        (PARTS / f"curve_timing_{args.model}_c{args.classes}.json").write_text(json.dumps(result))
        print(json.dumps(result, indent=1))
    else:
        report(args)


if __name__ == "__main__":
    main()
