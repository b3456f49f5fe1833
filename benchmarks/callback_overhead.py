"""Seconds per MACO step with no callback, with History, with a progress bar and with a GIF Recorder.

Run: python -m benchmarks.callback_overhead

Measured side by side in one process, alternating, on EfficientNet-Lite0 (needs the `zoo` extra).
A step's time is (time of `maco(nb_steps=1 + n)` - time of `maco(nb_steps=1)`) / n.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from xplique_maco import History, Neuron, Recorder, maco  # noqa: E402
from xplique_maco.zoo import efficientnet_lite0  # noqa: E402

from ._shared.internals import trace_count  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = efficientnet_lite0()
    objective = Neuron(model, "predictions", [1, 967])
    settings = dict(image_shape=(256, 256), nb_crops=8, seed=0)
    folder = Path(tempfile.mkdtemp())
    variants = {
        "no callback": lambda: dict(verbose=0),
        "History": lambda: dict(verbose=0, callbacks=[History()]),
        "progress bar": lambda: dict(verbose=1),
        "GIF Recorder every 4": lambda: dict(verbose=0, callbacks=[Recorder(folder / "run.gif", every=4)]),
    }
    maco(objective, nb_steps=1, verbose=0, **settings)
    traced = trace_count()
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, extra in variants.items():
            with redirect_stdout(io.StringIO()):
                start = time.perf_counter()
                maco(objective, nb_steps=1, **settings, **extra())
                short = time.perf_counter() - start
                start = time.perf_counter()
                maco(objective, nb_steps=1 + args.steps, **settings, **extra())
                times[name].append((time.perf_counter() - start - short) / args.steps)
    base = statistics.median(times["no callback"])
    print(f"EfficientNet-Lite0, 2 objectives, 256x256, 8 crops, {args.steps} steps, {args.repeats} repeats")
    for name, runs in times.items():
        print(f"{name:22s}: {statistics.median(runs):.3f} s/step  ratio {statistics.median(runs) / base:.3f}")
    print(f"retraces during the runs: {trace_count() - traced}")


if __name__ == "__main__":
    main()
