"""Seconds to trace and compile the MACO step for a chunk of few items against one of many.

The per-item random draws (crop boxes, noise, initial phases) run as loops in the graph, so
the traced step should not grow with the number of items in a chunk: the first call of a
chunk of 1,000 items should cost about what one of 10 costs, beyond the steps themselves.
Each size is timed in a fresh process (a clean trace cache): the first call of 1 step
(trace, compile, run), then a second call of 1 step (run only); their difference is the
tracing and compiling.

Run: python -m benchmarks.trace_items [--items 10 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from xplique_maco import Neuron, maco

count = int(sys.argv[1])
keras.utils.set_random_seed(0)
inputs = keras.Input((32, 32, 3))
x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
x = keras.layers.GlobalAveragePooling2D()(x)
model = keras.Model(inputs, keras.layers.Dense(10)(x))
objective = Neuron(model, -1, [i % 10 for i in range(count)])
settings = dict(nb_steps=1, image_shape=(32, 32), nb_crops=2, batch_size=count, seed=0, verbose=0)
start = time.perf_counter()
maco(objective, **settings)[0].numpy()
first = time.perf_counter() - start
start = time.perf_counter()
maco(objective, **settings)[0].numpy()
second = time.perf_counter() - start
print(json.dumps({"first": first, "second": second}))
"""


def measure(count: int) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", CHILD, str(count)], capture_output=True, text=True, check=True, env=os.environ
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    for count in args.items:
        runs = [measure(count) for _ in range(args.repeats)]
        tracing = sorted(run["first"] - run["second"] for run in runs)
        steps = sorted(run["second"] for run in runs)
        print(
            f"{count:5} items: trace + compile {tracing[0]:.2f} s (runs {', '.join(f'{t:.2f}' for t in tracing)}); "
            f"one step {steps[0]:.2f} s"
        )


if __name__ == "__main__":
    main()
