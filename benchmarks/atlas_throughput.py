"""Images per minute for a 64-objective job on EfficientNet-Lite0: chunked against one at a time.

Run: python -m benchmarks.atlas_throughput   (needs the `zoo` extra)

End to end, tracing included, in one process; small settings (see SETTINGS).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from xplique_maco import Neuron, maco  # noqa: E402
from xplique_maco.zoo import efficientnet_lite0  # noqa: E402

SETTINGS = dict(
    nb_steps=16, image_shape=(128, 128), nb_crops=4, model_input_size=(128, 128), seed=0, verbose=0
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objectives", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    model = efficientnet_lite0()
    objective = Neuron(model, "predictions", list(range(args.objectives)))
    start = time.perf_counter()
    for item in range(args.objectives):
        maco(objective, items=[item], **SETTINGS)
    one_at_a_time = time.perf_counter() - start
    start = time.perf_counter()
    maco(objective, batch_size=args.batch_size, **SETTINGS)
    chunked = time.perf_counter() - start
    per_minute = [60 * args.objectives / seconds for seconds in (one_at_a_time, chunked)]
    print(f"{args.objectives} objectives, EfficientNet-Lite0, {SETTINGS}")
    print(f"one at a time       : {one_at_a_time:6.1f} s, {per_minute[0]:6.1f} images/min")
    print(f"chunks of {args.batch_size:<3d}        : {chunked:6.1f} s, {per_minute[1]:6.1f} images/min")
    print(f"speed-up            : {one_at_a_time / chunked:.2f}x")


if __name__ == "__main__":
    main()
