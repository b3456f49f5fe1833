"""Run by test_distributed.py in a fresh process: two logical CPUs, one MirroredStrategy.

Prints one JSON line: the largest image and transparency differences between the distributed
run and the single-device run, and the number of traces of a second distributed call.
"""

import json
import sys

import tensorflow as tf

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402
from helpers import CHUNKED, LINEAR, conv_classifier  # noqa: E402

from xplique_maco import Diversity, History, Neuron, maco  # noqa: E402
from xplique_maco._rendering.step import trace_count  # noqa: E402

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = conv_classifier()
# Replicas run other batch sizes than one device, so the model's arithmetic may round differently;
# plain SGD keeps that at rounding level where Nadam can grow it (see LINEAR in helpers.py).
settings = {**CHUNKED, "nb_steps": 6, "seed": 4, **LINEAR}
objective = Neuron(model, "logits", [0, 1, 2, 3, 4])
single, single_masks = maco(objective, **settings)
history = History()
spread, spread_masks = maco(objective, strategy=strategy, callbacks=[history], **settings)
traced = trace_count()
maco(Neuron(model, "logits", [5, 6, 7, 8, 9]), strategy=strategy, **settings)
retraces = trace_count() - traced
small, _ = maco(Neuron(model, "logits", 0), strategy=strategy, **settings)  # fewer items than replicas
# Three groups of two images: replicas get whole groups (4 + 2 images), as one device computes them.
groups = Neuron(model, "logits", [0, 1, 2]) - 0.5 * Diversity(model, "conv1", images=2)
grouped, _ = maco(groups, **settings)
grouped_spread, _ = maco(groups, strategy=strategy, **settings)
json.dump(
    {
        "image": float(np.abs(single.numpy() - spread.numpy()).max()),
        "transparency": float(
            np.abs(single_masks.numpy() - spread_masks.numpy()).max() / single_masks.numpy().max()
        ),
        "shape": list(spread.shape),
        "history": list(history.values.shape),
        "retraces": retraces,
        "small": float(np.abs(small.numpy()[0] - single.numpy()[0]).max()),
        "diversity": float(np.abs(grouped.numpy() - grouped_spread.numpy()).max()),
        "devices": sorted(device.split("device:")[-1] for device in strategy.extended.worker_devices),
    },
    sys.stdout,
)
