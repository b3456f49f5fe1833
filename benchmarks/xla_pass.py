"""Does XLA make the model pass cheaper? The bare forward + backward of a crop batch compiled as a
graph and by XLA (`jit_compile=True`), timed side by side, in milliseconds per crop.

Run: python -m benchmarks.xla_pass --model efficientnet_lite0 --crops 16
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ._shared.models import load  # noqa: E402
from ._shared.timing import bare_pass, per_step  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", choices=["efficientnet_lite0", "mobilenet_v2", "resnet50v2"], default="efficientnet_lite0"
    )
    parser.add_argument("--crops", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2, help="passes per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = load(args.model)
    passes = {
        "graph": bare_pass(model, args.crops, 224),
        "xla": bare_pass(model, args.crops, 224, jit_compile=True),
    }
    runs = {name: (lambda n, one=one: [one() for _ in range(n)]) for name, one in passes.items()}
    seconds = per_step(runs, args.steps, args.repeats)
    times = {name: [s / args.crops * 1000 for s in values] for name, values in seconds.items()}
    for name, values in times.items():
        print(
            f"{name:5}: {statistics.median(values):7.1f} ms per crop (runs: {', '.join(f'{v:.0f}' for v in values)})"
        )
    print(f"xla / graph: {statistics.median(times['xla']) / statistics.median(times['graph']):.2f}")


if __name__ == "__main__":
    main()
