"""Side by side with the field: speed, memory, many objectives and quality against Xplique's MACO
and the Fourier baseline, in one run on one machine. Writes benchmarks/results/report.md.

Run everything (needs Xplique 2.0.2 beside this package, see tox.ini's bench environment):
    python -m benchmarks.compare report
Or one part:   python -m benchmarks.compare speed --model resnet50v2
               python -m benchmarks.compare quality --model mobilenet_v2 --method xplique --classes 16

Speed: seconds per step by (time of nb_steps = 1 + n) - (time of nb_steps = 1), over n, which
cancels per-call set-up and tracing. Memory: peak RSS of a separate process per method.
Quality: equal compute (same steps, crops and image size) for the three methods.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from xplique_maco import Neuron, fourier, maco  # noqa: E402
from xplique_maco.metrics import spectrum_statistics, target_confidence, transferability  # noqa: E402
from xplique_maco.zoo import efficientnet_lite0, imagenet_classes, mobilenet_v2  # noqa: E402

from .step_overhead import bare_pass  # noqa: E402  (same folder: the bare forward + backward)

RESULTS = Path(__file__).parent / "results"
CLASSES = [1, 9, 130, 144, 291, 309, 323, 388, 417, 430, 483, 508, 779, 954, 967, 980]


def load(name: str):
    if name == "efficientnet_lite0":
        return efficientnet_lite0()
    if name == "mobilenet_v2":
        return mobilenet_v2()
    if name == "resnet50v2":  # random weights, for speed only (flat: Xplique cannot read nested models)
        import keras

        return keras.applications.ResNet50V2(
            weights=None, input_shape=(224, 224, 3), classifier_activation=None
        )
    raise ValueError(f"unknown model {name!r}")


_FIXED: dict = {}


def _fixed_size(model):
    """Xplique needs a static input size; the zoo models accept any: wrap them at 224 x 224."""
    if model.inputs[0].shape[1] is not None:
        return model
    if id(model) not in _FIXED:
        import keras

        fixed = keras.models.clone_model(model, input_tensors=keras.Input((224, 224, 3)))
        fixed.set_weights(model.get_weights())
        _FIXED[id(model)] = fixed
    return _FIXED[id(model)]


def xplique_render(model, index, steps, crops, size, seed):
    """Xplique 2.0.2's maco on one class (it takes one objective per call); (image, transparency)."""
    from xplique.features_visualizations import Objective
    from xplique.features_visualizations import maco as xplique_maco

    tf.random.set_seed(seed)
    objective = Objective.neuron(_fixed_size(model), -1, index)
    image, transparency = xplique_maco(
        objective, nb_steps=steps, nb_crops=crops, values_range=(0, 1), custom_shape=(size, size)
    )
    return np.asarray(image), np.asarray(transparency)


def per_step(runs: dict, steps: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per step of each run, measured in turn within every repeat (machine drift hits all alike)."""
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run(1)
            short = time.perf_counter() - start
            start = time.perf_counter()
            run(1 + steps)
            times[name].append((time.perf_counter() - start - short) / steps)
    return times


def speed(args) -> dict:
    model = load(args.model)
    size, crops = args.size, args.crops
    objective = Neuron(model, -1, 1)
    bare = bare_pass(model, crops, 224)
    settings = dict(image_shape=(size, size), nb_crops=crops, seed=0, verbose=0)
    runs = {
        "ours": lambda n: maco(objective, nb_steps=n, **settings)[0].numpy(),
        # All crops in one model pass, as the bare pass and Xplique do (on CPUs ours makes
        # passes of about 16 by default).
        "ours_one_pass": lambda n: maco(objective, nb_steps=n, crops_per_pass=crops, **settings)[0].numpy(),
        "xplique": lambda n: xplique_render(model, 1, n, crops, size, 0),
        "bare": lambda n: [bare() for _ in range(n)],
    }
    runs["ours"](1)  # first traces
    runs["ours_one_pass"](1)
    results = per_step(runs, args.steps, args.repeats)
    second_call = time.perf_counter()
    maco(Neuron(model, -1, 2), nb_steps=2, image_shape=(size, size), nb_crops=crops, seed=1, verbose=0)
    ours_second = time.perf_counter() - second_call
    second_call = time.perf_counter()
    xplique_render(model, 2, 2, crops, size, 1)
    xplique_second = time.perf_counter() - second_call
    medians = {name: statistics.median(values) for name, values in results.items()}
    return {
        "model": args.model,
        "size": size,
        "crops": crops,
        "seconds_per_step": medians,
        "runs": results,
        "ours_over_xplique": medians["ours"] / medians["xplique"],
        "ours_over_bare": medians["ours"] / medians["bare"],
        "one_pass_over_bare": medians["ours_one_pass"] / medians["bare"],
        "second_call_2_steps": {"ours": ours_second, "xplique": xplique_second},
    }


def memory(args) -> dict:
    """Run in its own process: peak RSS of one method for a few steps."""
    model = load(args.model)
    if args.method in ("ours", "ours_one_pass"):
        maco(
            Neuron(model, -1, 1),
            nb_steps=args.steps,
            image_shape=(args.size,) * 2,
            nb_crops=args.crops,
            verbose=0,
            crops_per_pass=args.crops if args.method == "ours_one_pass" else None,
        )
    elif args.method == "xplique":
        xplique_render(model, 1, args.steps, args.crops, args.size, 0)
    return {"method": args.method, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def many(args) -> dict:
    model = load("efficientnet_lite0")
    classes = CLASSES[: args.classes]
    settings = dict(nb_steps=args.steps, image_shape=(args.size,) * 2, nb_crops=args.crops, seed=0, verbose=0)
    start = time.perf_counter()
    maco(Neuron(model, -1, classes), **settings)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    for index in classes:
        xplique_render(model, index, args.steps, args.crops, args.size, 0)
    theirs = time.perf_counter() - start
    return {
        "classes": len(classes),
        "steps": args.steps,
        "ours_s": ours,
        "xplique_s": theirs,
        "speedup": theirs / ours,
    }


def photo_statistics() -> dict:
    import matplotlib.cbook
    import matplotlib.pyplot as plt
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), *data.stereo_motorcycle()[:2]]
    photos += [*load_sample_images().images, plt.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))]
    shares = [float(spectrum_statistics(p[None] / 255.0)["high_frequency_share"][0]) for p in photos]
    slopes = [float(spectrum_statistics(p[None] / 255.0)["slope"][0]) for p in photos]
    return {
        "share_min": min(shares),
        "share_max": max(shares),
        "slope_min": min(slopes),
        "slope_max": max(slopes),
    }


JUDGES = {"efficientnet_lite0": "mobilenet_v2", "mobilenet_v2": "efficientnet_lite0"}
METHODS = ("ours", "xplique", "fourier")
# `maco`'s default glance share (ours_glance: 2 of 8 crops); "ours" stays without glances, as
# its cached parts were rendered before glances became the default.
GLANCE = 0.25
NAMES = {"ours": "ours, no glances", "ours_glance": "ours (defaults: glance 0.25)"}
LOW_PASS_SIDE = 64


def render_quality_images(method: str, source, classes, seeds, steps: int, crops: int, size: int):
    """Images (len(classes) * len(seeds), size, size, 3) in [0, 1], seed-major, and their labels."""
    settings = dict(nb_steps=steps, image_shape=(size, size), nb_crops=crops, verbose=0)
    images = []
    for seed in seeds:
        if method == "xplique":
            images.append(np.stack([xplique_render(source, c, steps, crops, size, seed)[0] for c in classes]))
        else:
            render = fourier if method == "fourier" else maco
            glance = {"glance": GLANCE if method == "ours_glance" else 0.0}
            images.append(render(Neuron(source, -1, classes), seed=seed, **settings, **glance)[0].numpy())
    return np.concatenate(images), list(classes) * len(seeds)


def low_pass(images, side: int = LOW_PASS_SIDE) -> np.ndarray:
    """The images shrunk to `side` pixels (antialiased) and back: only what reads at a glance."""
    size = images.shape[1:3]
    small = tf.image.resize(images, (side, side), antialias=True)
    return tf.image.resize(small, size, method="bilinear").numpy()


def score(images, labels, source, judge, photos) -> dict:
    """Everything the quality table reports for one set of images."""
    logits = source(tf.image.resize(images, (224, 224), antialias=True), training=False).numpy()
    stats = spectrum_statistics(images)
    shares = stats["high_frequency_share"]
    return {
        "source_top1": float(np.mean(np.argmax(logits, axis=1) == np.array(labels))),
        "source_confidence": float(np.mean(target_confidence(source, images, labels))),
        **{f"judge_{k}": v for k, v in transferability(images, labels, {"j": judge})["j"].items()},
        **{
            f"lowpass_{k}": v for k, v in transferability(low_pass(images), labels, {"j": judge})["j"].items()
        },
        "hf_share_median": float(np.median(shares)),
        "hf_share_min": float(shares.min()),
        "hf_share_max": float(shares.max()),
        "hf_in_photo_range": float(
            np.mean((shares >= photos["share_min"]) & (shares <= photos["share_max"]))
        ),
        "slope_median": float(np.median(stats["slope"])),
    }


def quality(args) -> dict:
    """One method on one source model for seeds first_seed .. first_seed + seeds - 1, judged by
    the other model; images kept beside the part (the report scores all seeds together)."""
    classes = CLASSES[: args.classes]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    source, judge = load(args.model), load(JUDGES[args.model])
    start = time.perf_counter()
    images, labels = render_quality_images(
        args.method, source, classes, seeds, args.steps, args.crops, args.size
    )
    seconds = time.perf_counter() - start
    if args.images:
        np.savez_compressed(args.images, images=(np.clip(images, 0, 1) * 255).round().astype(np.uint8))
    return {
        "source": args.model,
        "judge": JUDGES[args.model],
        "method": args.method,
        "settings": {
            "classes": classes,
            "seeds": seeds,
            "steps": args.steps,
            "crops": args.crops,
            "size": args.size,
        },
        "images": len(images),
        "seconds": seconds,
        **score(images, labels, source, judge, photo_statistics()),
    }


def rescore(args) -> dict:
    """The quality figures of the images of several parts (the seeds of one row) taken together."""
    classes = CLASSES[: args.classes]
    images = np.concatenate([np.load(path)["images"] / 255.0 for path in args.images_from])
    labels = list(classes) * (len(images) // len(classes))
    source, judge = load(args.model), load(JUDGES[args.model])
    return score(images.astype(np.float32), labels, source, judge, photo_statistics())


def save_picture(pictures: dict, classes, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = imagenet_classes()
    rows = list(pictures)
    columns = len(next(iter(pictures.values())))
    figure, axes = plt.subplots(len(rows), columns, figsize=(2 * columns, 2.1 * len(rows)), squeeze=False)
    for r, key in enumerate(rows):
        for c in range(columns):
            axes[r, c].imshow(np.clip(pictures[key][c], 0, 1))
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(names[classes[c]], fontsize=8)
        axes[r, 0].set_ylabel(f"{key[1]}\n({key[0]})", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=70)


def in_subprocess(arguments: list[str]) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.compare", *arguments, "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def report(args) -> None:
    """Everything, each part in its own process, then the markdown report.

    Each part's result is kept in results/parts/ (quality parts keep their images beside, as
    .npz, not committed); a rerun redoes only the missing parts and those named by --redo
    (e.g. `--redo quality_efficientnet_lite0_ours_seed0 quality_efficientnet_lite0_ours_seed1`
    after changing our defaults; each row's score over all its seeds is redone when one of
    its seeds' images is newer). Delete the folder to start over.
    """
    parts = RESULTS / "parts"
    parts.mkdir(parents=True, exist_ok=True)

    def part(name: str, arguments: list[str], inputs: tuple[str, ...] = (), cheap: bool = False):
        """The cached part, recomputed when asked to or when one of its input files is newer;
        with --cached-only, None for a part not computed yet (unless it is cheap to compute)."""
        path = parts / f"{name}.json"
        stale = path.exists() and any(
            Path(i).exists() and Path(i).stat().st_mtime > path.stat().st_mtime for i in inputs
        )
        if args.cached_only and not cheap and not path.exists():
            return None
        if not path.exists() or name in args.redo or stale:
            path.write_text(json.dumps(in_subprocess(arguments)))
        return json.loads(path.read_text())

    sections = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, TF {tf.__version__}"}
    sections["command"] = " ".join(["python -m benchmarks.compare", *sys.argv[1:]])
    sections["speed"] = [
        part(f"speed_{m}", ["speed", "--model", m, "--steps", str(args.steps)]) for m in args.speed_models
    ]
    # Peak RSS varies by tens of MB between identical processes (allocator): median of several.
    sections["memory"] = []
    for m in args.speed_models:
        for method in ("ours", "ours_one_pass", "xplique", "bare"):
            arguments = ["memory", "--model", m, "--method", method]
            runs = [part(f"memory_{m}_{method}_{r}", arguments) for r in range(args.memory_repeats)]
            peaks = [run["peak_rss_mb"] for run in runs if run is not None]
            if peaks:
                sections["memory"].append(
                    {"model": m, "method": method, "peak_rss_mb": statistics.median(peaks), "runs": peaks}
                )
    sections["many"] = part("many", ["many", "--steps", "32"])
    quality_settings = ["--classes", str(args.classes), "--steps", str(args.quality_steps)]
    table, pictures = [], {}
    for source in JUDGES:
        for method in METHODS:
            # One part per seed (each keeps its images), then one score over all of them.
            seed_parts, seed_images, seeds = [], [], []
            for seed in range(args.seeds):
                name = f"quality_{source}_{method}_seed{seed}"
                images = parts / f"{name}.npz"
                arguments = ["quality", "--model", source, "--method", method, "--images", str(images)]
                arguments += ["--first-seed", str(seed), "--seeds", "1"]
                result = part(name, arguments + quality_settings)
                if result is not None:
                    seed_parts.append(result)
                    seed_images.append(str(images))
                    seeds.append(seed)
            if not seed_parts:
                continue
            first = seed_parts[0]
            row = {key: first[key] for key in ("source", "judge", "method")}
            row["settings"] = {**first["settings"], "seeds": seeds}
            row["images"] = sum(p["images"] for p in seed_parts)
            row["seconds"] = sum(p["seconds"] for p in seed_parts)
            rescore_arguments = ["rescore", "--model", source, "--classes", str(args.classes)]
            rescore_arguments += ["--images-from", *seed_images]
            name = f"quality_{source}_{method}_seeds{''.join(map(str, seeds))}"
            scores = part(name, rescore_arguments, inputs=tuple(seed_images), cheap=True)
            table.append({**scores, **row})
            if Path(seed_images[0]).exists():
                pictures[(source, method)] = np.load(seed_images[0])["images"][: min(8, args.classes)] / 255.0
    sections["quality"] = {"photos": photo_statistics(), "table": table}
    if pictures:
        save_picture(pictures, table[0]["settings"]["classes"], RESULTS / "quality.png")
    (RESULTS / "report.json").write_text(json.dumps(sections, indent=1))
    (RESULTS / "report.md").write_text(markdown(sections))
    print((RESULTS / "report.md").read_text())


def markdown(sections: dict) -> str:
    command = sections.get("command", "python -m benchmarks.compare report")
    lines = ["# xplique_maco against the field", "", f"Machine: {sections['machine']}. Command: "]
    lines += [f"`{command}` (see its docstring for the method).", "", "## Speed", ""]
    lines += ["Ours with its defaults (on CPUs, model passes of about 16 crops) and in one pass of all"]
    lines += [
        "crops like the bare pass and Xplique (`crops_per_pass=crops`), medians of interleaved repeats.",
        "",
    ]
    lines += [
        "| model | image | crops | ours s/step | ours 1 pass | Xplique | bare | ours/Xplique | ours/bare |"
    ]
    lines[-1] += " 1 pass/bare |"
    lines += ["|---|---|---|---|---|---|---|---|---|---|"]
    for s in sections["speed"]:
        t = s["seconds_per_step"]
        one_pass = f"{t['ours_one_pass']:.3f}" if "ours_one_pass" in t else "-"
        one_pass_ratio = f"{s['one_pass_over_bare']:.3f}" if "one_pass_over_bare" in s else "-"
        lines.append(
            f"| {s['model']} | {s['size']} | {s['crops']} | {t['ours']:.3f} | {one_pass} | {t['xplique']:.3f} "
            f"| {t['bare']:.3f} | {s['ours_over_xplique']:.2f} | {s['ours_over_bare']:.3f} | {one_pass_ratio} |"
        )
    lines += ["", "Second call, 2 steps, another class (tracing included):", ""]
    for s in sections["speed"]:
        c = s["second_call_2_steps"]
        lines.append(f"- {s['model']}: ours {c['ours']:.2f} s, Xplique {c['xplique']:.2f} s")
    lines += [
        "",
        "## Peak memory (separate processes, RSS, median of several; runs in brackets)",
        "",
        "| model | ours MB | ours 1 pass MB | Xplique MB | process alone MB |",
    ]
    lines += ["|---|---|---|---|---|"]
    for model in sorted({m["model"] for m in sections["memory"]}):
        cells = []
        for method in ("ours", "ours_one_pass", "xplique", "bare"):
            found = [m for m in sections["memory"] if m["model"] == model and m["method"] == method]
            runs = found[0].get("runs", []) if found else []
            detail = f" ({', '.join(f'{r:.0f}' for r in runs)})" if len(runs) > 1 else ""
            cells.append(f"{found[0]['peak_rss_mb']:.0f}{detail}" if found else "-")
        lines.append(f"| {model} | {' | '.join(cells)} |")
    m = sections["many"]
    lines += ["", "## Many objectives", ""]
    lines.append(
        f"{m['classes']} classes of EfficientNet-Lite0, {m['steps']} steps, end to end: one batched call "
        f"{m['ours_s']:.1f} s, {m['classes']} Xplique calls {m['xplique_s']:.1f} s: {m['speedup']:.2f}x."
    )
    q = sections["quality"]
    settings = {
        key: value for key, value in q["table"][0]["settings"].items() if key not in ("classes", "seeds")
    }
    lines += ["", "## Quality at equal compute", "", f"Settings (every method): {settings}, classes "]
    lines[-1] += f"{q['table'][0]['settings']['classes']} ({len(q['table'][0]['settings']['classes'])})."
    lines += [""]
    p = q["photos"]
    lines.append(
        f"The 9 offline photos: high-frequency share {p['share_min']:.3f}-{p['share_max']:.3f}, "
        f"slope {p['slope_min']:.2f} to {p['slope_max']:.2f}."
    )
    lines += [
        "",
        "| source -> judge | method | seeds | source top-1 | source p | judge top-1 | judge top-5 |",
    ]
    lines[-1] += " HF share median (min-max) | in photo range | slope | seconds |"
    lines += ["|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in q["table"]:
        seeds = r["settings"]["seeds"]
        seeds = ", ".join(map(str, seeds)) if isinstance(seeds, list) else str(seeds)
        lines.append(
            f"| {r['source']} -> {r['judge']} | {NAMES.get(r['method'], r['method'])} | {seeds} | {r['source_top1']:.0%} | {r['source_confidence']:.2f} "
            f"| {r['judge_top1']:.0%} | {r['judge_top5']:.0%} | {r['hf_share_median']:.3f} "
            f"({r['hf_share_min']:.3f}-{r['hf_share_max']:.3f}) | {r['hf_in_photo_range']:.0%} "
            f"| {r['slope_median']:.2f} | {r['seconds']:.0f} |"
        )
    lines += ["", "![first classes, seed 0](quality.png)", ""]
    curves = RESULTS / "curves.md"  # written by curves.py report
    if curves.exists():
        lines += [curves.read_text().strip(), ""]
    lines += defaults_section()
    return "\n".join(lines)


def defaults_section() -> list[str]:
    """Why maco's defaults are what they are (results/defaults.md), then every tuning run."""
    from .tune import LOG, table  # tune.py imports this module: imported here, not at the top

    lines = ["## How the defaults were chosen", ""]
    rationale = RESULTS / "defaults.md"
    if rationale.exists():
        lines += [rationale.read_text().strip(), ""]
    if LOG.exists():
        lines += ["All tuning runs (`python -m benchmarks.tune --table`):", "", table(), ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parts = parser.add_subparsers(dest="part", required=True)
    for name in ("speed", "memory", "many", "quality", "rescore", "report"):
        part = parts.add_parser(name)
        part.add_argument("--model", default="efficientnet_lite0")
        part.add_argument(
            "--method",
            default="ours",
            choices=["ours", "ours_glance", "ours_one_pass", "xplique", "bare", "fourier"],
        )
        part.add_argument("--steps", type=int, default={"quality": 128, "many": 32}.get(name, 4))
        part.add_argument("--repeats", type=int, default=5)
        part.add_argument("--size", type=int, default=512 if name in ("speed", "memory") else 256)
        part.add_argument("--crops", type=int, default=32 if name in ("speed", "memory") else 8)
        part.add_argument("--classes", type=int, default=16)
        part.add_argument("--seeds", type=int, default=2)
        part.add_argument("--first-seed", type=int, default=0, help="quality: seeds start here")
        part.add_argument("--images-from", nargs="+", help="rescore: .npz files of quality parts")
        part.add_argument("--memory-repeats", type=int, default=3, help="report: processes per method")
        part.add_argument(
            "--cached-only", action="store_true", help="report: compute no missing part, report what exists"
        )
        part.add_argument("--quality-steps", type=int, default=128)
        part.add_argument("--speed-models", nargs="+", default=["efficientnet_lite0", "resnet50v2"])
        part.add_argument("--images", help="quality: also keep the images in this .npz file")
        part.add_argument("--redo", nargs="*", default=[], help="report: recompute these parts")
        part.add_argument("--json", action="store_true", help="print one JSON line (used by report)")
    args = parser.parse_args()
    if args.part == "report":
        report(args)
        return
    parts = {"speed": speed, "memory": memory, "many": many, "quality": quality, "rescore": rescore}
    result = parts[args.part](args)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
