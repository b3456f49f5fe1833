"""The memory rule of the defaults on accelerators, figured on this CPU machine.

For each model: the cost per crop that the library's memory rule derives from the probe's graph
(what it uses where the allocator keeps no peak), next to what one model pass costs here in resident memory
(the growth of the process's peak RSS over a pass of 32 crops after one of 1 crop, forward and
backward), the same for the image side of a step (per image), and the chunk and pass sizes the rule would choose for all 1000 classes on GPUs of
16, 40 and 80 GB (weights left out). A GPU measures the cost per crop with its allocator instead,
so on a GPU the chunks come out larger than these derived ones by about the ratio printed.

    python -m benchmarks.memory_rule [--models MobileNetV2 ResNet50 ...] [--image-size 512]

Each model is measured in its own process, so the peak RSS of one does not hide the next.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

GIGABYTE = 1024**3


def measure(name: str, image_size: int, nb_crops: int) -> dict:
    # TensorFlow loads only in the measuring processes, not in the one that starts them.
    import keras
    import tensorflow as tf

    from ._shared.internals import MEMORY_FRACTION, crop_cost, fitting, item_cost, memory_probe

    model = getattr(keras.applications, name)(weights=None, input_shape=(224, 224, 3))
    derived = crop_cost(model, (224, 224, 3), "/device:CPU:0")
    probe = memory_probe(model)
    probe(tf.random.uniform((1, 224, 224, 3))).numpy()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    probe(tf.random.uniform((32, 224, 224, 3))).numpy()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    resident = (after - before) / 31
    per_item = item_cost((image_size, image_size), 3)
    choices = {}
    for gigabytes in (16, 40, 80):
        budget = int(MEMORY_FRACTION * gigabytes * GIGABYTE)
        sizes = fitting(budget, per_item, derived, nb_crops, 1000, 1)
        choices[f"{gigabytes} GB"] = {"batch_size": sizes.batch_size, "crops_per_pass": sizes.crops_per_pass}
    return {
        "model": name,
        "derived MB per crop": round(derived / 1e6, 1),
        "resident MB per crop (CPU)": round(resident / 1e6, 1),
        "derived / resident": round(derived / resident, 2),
        "image side MB per item": round(per_item / 1e6, 1),
        "chosen": choices,
    }


def image_side(image_size: int, glance: float = 0.0) -> dict:
    """Resident memory per image of a step on the image side alone (a one-convolution model, one
    crop of 32 px, a glance if `glance` is 1): the growth of the peak RSS from a chunk of 3 images
    to one of 9, per image."""
    import keras

    from xplique_maco import Neuron, maco

    from ._shared.internals import item_cost

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(9, 3)(inputs)))
    peaks = []
    for count in (3, 9):
        settings = dict(nb_steps=2, nb_crops=1, batch_size=count, crops_per_pass=count, verbose=0, seed=0)
        settings["glance"] = glance
        maco(Neuron(model, -1, list(range(count))), image_shape=(image_size, image_size), **settings)
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    resident = (peaks[1] - peaks[0]) / 6
    return {
        "image side": f"{image_size} x {image_size} RGB" + (" with glances" if glance else ""),
        "resident MB per image (CPU)": round(resident / 1e6, 1),
        "rule's MB per image": round(item_cost((image_size, image_size), 3, bool(glance)) / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["MobileNetV2", "ResNet50", "EfficientNetB0", "VGG16"])
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--crops", type=int, default=8)
    parser.add_argument(
        "--glance", type=float, default=0.0, choices=[0.0, 1.0], help="image side with a glance"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.one == "image side":
        print(json.dumps(image_side(arguments.image_size, arguments.glance)))
        return
    if arguments.one:
        print(json.dumps(measure(arguments.one, arguments.image_size, arguments.crops)))
        return
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in ["image side", *arguments.models]:
        command = [sys.executable, "-m", "benchmarks.memory_rule", "--one", name]
        command += ["--image-size", str(arguments.image_size), "--crops", str(arguments.crops)]
        command += ["--glance", str(arguments.glance)]
        run = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
        print(run.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
