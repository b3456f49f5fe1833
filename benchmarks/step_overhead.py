"""Seconds per MACO step against the bare forward + backward of the same model on the same crop batch.

Run: python -m benchmarks.step_overhead --model resnet50v2 --image-size 512 --crops 32

Both are measured side by side in one process, alternating, so machine noise hits both alike.
A MACO step's time is taken as (time of `maco(nb_steps=1 + n)` - time of `maco(nb_steps=1)`) / n,
which cancels the per-call set-up (spectrum resizing, initial phase, final render).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from xplique_maco import Neuron, maco  # noqa: E402

from ._shared.timing import bare_pass  # noqa: E402

MODELS = {
    "resnet50v2": keras.applications.ResNet50V2,
    "mobilenetv2": keras.applications.MobileNetV2,
    "efficientnetb0": keras.applications.EfficientNetB0,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet50v2")
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--crops", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed maco call")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = MODELS[args.model](weights=None, input_shape=(224, 224, 3))
    objective = Neuron(model, -1, 1)
    settings = dict(image_shape=(args.image_size, args.image_size), nb_crops=args.crops, seed=0)
    maco(objective, nb_steps=1, **settings)  # trace and compile
    bare = bare_pass(model, args.crops, 224)

    ours, theirs = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        maco(objective, nb_steps=1, **settings)[0].numpy()
        short = time.perf_counter() - start
        start = time.perf_counter()
        maco(objective, nb_steps=1 + args.steps, **settings)[0].numpy()
        long = time.perf_counter() - start
        ours.append((long - short) / args.steps)
        start = time.perf_counter()
        for _ in range(args.steps):
            bare()
        theirs.append((time.perf_counter() - start) / args.steps)

    # The pipeline alone (phase -> image -> crops -> noise, gradients, update, transparency) on a
    # model that costs almost nothing: the absolute overhead, less sensitive to machine noise.
    inputs = keras.Input((224, 224, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    trivial = keras.Model(inputs, keras.layers.Dense(2, name="logits")(pooled))
    trivial_objective = Neuron(trivial, -1, 1)
    maco(trivial_objective, nb_steps=1, **settings)
    pipeline = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        maco(trivial_objective, nb_steps=1, **settings)[0].numpy()
        short = time.perf_counter() - start
        start = time.perf_counter()
        maco(trivial_objective, nb_steps=1 + args.steps, **settings)[0].numpy()
        pipeline.append((time.perf_counter() - start - short) / args.steps)

    step, floor = statistics.median(ours), statistics.median(theirs)
    overhead = statistics.median(pipeline)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, TF {tf.__version__}, Keras {keras.__version__}"
    )
    print(
        f"model: {args.model} (random weights), input 224x224, image {args.image_size}x{args.image_size}, {args.crops} crops"
    )
    print(f"maco step      : {step:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in ours)})")
    print(f"bare fwd+bwd   : {floor:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in theirs)})")
    print(f"ratio maco/bare: {step / floor:.3f}")
    print(
        f"pipeline alone : {overhead:.3f} s per step -> (bare + pipeline) / bare = {(floor + overhead) / floor:.3f}"
    )


if __name__ == "__main__":
    main()
