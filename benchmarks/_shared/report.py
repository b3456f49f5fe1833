"""The markdown of the results: benchmarks/results/report.md from the sections compare.py measures,
with curves.md (curves.py) and the tuning runs (tune.py, which prints the same table) after them."""

from __future__ import annotations

import json

from .methods import MEMORY_METHODS, NAMES
from .results import RESULTS, TUNING_LOG


def speed_lines(speeds: list[dict]) -> list[str]:
    lines = [
        "## Speed",
        "",
        "Ours with its defaults (on CPUs, model passes of about 16 crops) and in one pass of all",
        "crops like the bare pass and Xplique (`crops_per_pass=crops`), medians of interleaved repeats.",
        "",
        "| model | image | crops | ours s/step | ours 1 pass | Xplique | bare | ours/Xplique | ours/bare "
        "| 1 pass/bare |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in speeds:
        t = s["seconds_per_step"]
        one_pass = f"{t['ours_one_pass']:.3f}" if "ours_one_pass" in t else "-"
        one_pass_ratio = f"{s['one_pass_over_bare']:.3f}" if "one_pass_over_bare" in s else "-"
        lines.append(
            f"| {s['model']} | {s['size']} | {s['crops']} | {t['ours']:.3f} | {one_pass} | {t['xplique']:.3f} "
            f"| {t['bare']:.3f} | {s['ours_over_xplique']:.2f} | {s['ours_over_bare']:.3f} | {one_pass_ratio} |"
        )
    lines += ["", "Second call, 2 steps, another class (tracing included):", ""]
    for s in speeds:
        c = s["second_call_2_steps"]
        lines.append(f"- {s['model']}: ours {c['ours']:.2f} s, Xplique {c['xplique']:.2f} s")
    return lines


def memory_lines(memories: list[dict]) -> list[str]:
    lines = [
        "## Peak memory (separate processes, RSS, median of several; runs in brackets)",
        "",
        "| model | ours MB | ours 1 pass MB | Xplique MB | process alone MB |",
        "|---|---|---|---|---|",
    ]
    for model in sorted({m["model"] for m in memories}):
        cells = []
        for method in MEMORY_METHODS:
            found = [m for m in memories if m["model"] == model and m["method"] == method]
            runs = found[0].get("runs", []) if found else []
            detail = f" ({', '.join(f'{r:.0f}' for r in runs)})" if len(runs) > 1 else ""
            cells.append(f"{found[0]['peak_rss_mb']:.0f}{detail}" if found else "-")
        lines.append(f"| {model} | {' | '.join(cells)} |")
    return lines


def many_lines(m: dict) -> list[str]:
    return [
        "## Many objectives",
        "",
        f"{m['classes']} classes of EfficientNet-Lite0, {m['steps']} steps, end to end: one batched call "
        f"{m['ours_s']:.1f} s, {m['classes']} Xplique calls {m['xplique_s']:.1f} s: {m['speedup']:.2f}x.",
    ]


def quality_lines(q: dict) -> list[str]:
    settings = {
        key: value for key, value in q["table"][0]["settings"].items() if key not in ("classes", "seeds")
    }
    classes, p = q["table"][0]["settings"]["classes"], q["photos"]
    lines = [
        "## Quality at equal compute",
        "",
        f"Settings (every method): {settings}, classes {classes} ({len(classes)}).",
        "",
        f"The 9 offline photos: high-frequency share {p['share_min']:.3f}-{p['share_max']:.3f}, "
        f"slope {p['slope_min']:.2f} to {p['slope_max']:.2f}"
        + (
            f", fine-band kurtosis at 512 px {p['fine_min']:.1f}-{p['fine_max']:.1f}."
            if "fine_min" in p
            else "."
        ),
        "",
        "| source -> judge | method | seeds | source top-1 | source p | judge top-1 | judge top-5 "
        "| HF share median (min-max) | in photo range | slope | fine detail median (min-max) | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in q["table"]:
        seeds = r["settings"]["seeds"]
        seeds = ", ".join(map(str, seeds)) if isinstance(seeds, list) else str(seeds)
        lines.append(
            f"| {r['source']} -> {r['judge']} | {NAMES.get(r['method'], r['method'])} | {seeds} | {r['source_top1']:.0%} | {r['source_confidence']:.2f} "
            f"| {r['judge_top1']:.0%} | {r['judge_top5']:.0%} | {r['hf_share_median']:.3f} "
            f"({r['hf_share_min']:.3f}-{r['hf_share_max']:.3f}) | {r['hf_in_photo_range']:.0%} "
            f"| {r['slope_median']:.2f} | {_fine_cell(r)} | {r['seconds']:.0f} |"
        )
    return lines


def _fine_cell(row: dict) -> str:
    """The fine-band kurtosis of a row; rows scored before it was measured show a dash."""
    if "fine_detail_median" not in row:
        return "-"
    return f"{row['fine_detail_median']:.1f} ({row['fine_detail_min']:.1f}-{row['fine_detail_max']:.1f})"


def defaults_lines() -> list[str]:
    """Why maco's defaults are what they are (results/defaults.md), then every tuning run."""
    lines = ["## How the defaults were chosen", ""]
    rationale = RESULTS / "defaults.md"
    if rationale.exists():
        lines += [rationale.read_text().strip(), ""]
    if TUNING_LOG.exists():
        lines += ["All tuning runs (`python -m benchmarks.tune --table`):", "", tuning_table(), ""]
    return lines


def markdown(sections: dict) -> str:
    command = sections.get("command", "python -m benchmarks.compare report")
    lines = ["# xplique_maco against the field", "", f"Machine: {sections['machine']}. Command: "]
    lines += [f"`{command}` (see its docstring for the method).", ""]
    lines += speed_lines(sections["speed"]) + [""]
    lines += memory_lines(sections["memory"]) + [""]
    lines += many_lines(sections["many"]) + [""]
    lines += quality_lines(sections["quality"])
    lines += ["", "![first classes, seed 0](quality.png)", ""]
    curves = RESULTS / "curves.md"  # written by `python -m benchmarks.curves report`
    if curves.exists():
        lines += [curves.read_text().strip(), ""]
    lines += defaults_lines()
    return "\n".join(lines)


def tuning_table() -> str:
    """The accumulated tuning runs as a markdown table, best judge top-5 first per source model."""
    rows = [json.loads(line) for line in TUNING_LOG.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda row: (row["source"], -row["judge_top5"], -row.get("judge_confidence", 0)))
    lines = [
        "| source | steps x crops, size | other settings | images | source top-1 | judge top-1 | judge top-5 "
        "| low-pass top-5 | judge p | HF median | HF in range | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        settings = row["settings"]
        budget = f"{settings['nb_steps']} x {settings['nb_crops']}, {settings['image_shape'][0]}"
        other = ", ".join(
            f"{name}={value}"
            for name, value in settings.items()
            if name not in ("nb_steps", "nb_crops", "image_shape", "verbose", "optimizer")
        )
        judge_p = f"{row['judge_confidence']:.2f}" if "judge_confidence" in row else "-"
        low_pass = f"{row['lowpass_top5']:.0%}" if "lowpass_top5" in row else "-"
        lines.append(
            f"| {row['source']} | {budget} | {other} | {row['classes'] * row['seeds']} | {row['source_top1']:.0%} "
            f"| {row['judge_top1']:.0%} | {row['judge_top5']:.0%} | {low_pass} | {judge_p} | {row['hf_share_median']:.3f} "
            f"| {row['hf_in_photo_range']:.0%} | {row['seconds']:.0f} |"
        )
    return "\n".join(lines)
