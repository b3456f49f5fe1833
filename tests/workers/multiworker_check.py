"""Run by test_distributed.py as one of two worker processes of a MultiWorkerMirroredStrategy.

Usage: multiworker_check.py INDEX PORT,PORT OUTPUT. Worker INDEX of a cluster of two workers on
127.0.0.1 renders four images in chunks of three (split 2 + 1 across the workers, then one item
padded to both) and saves to OUTPUT/worker-INDEX.npz its images, transparencies and History, and
the traces of a second call.
"""

import json
import os
import sys

index, ports, output = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3]
os.environ["TF_CONFIG"] = json.dumps(
    {
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
        "task": {"type": "worker", "index": index},
    }
)

import tensorflow as tf  # noqa: E402

# Made before any other TensorFlow operation, as MultiWorkerMirroredStrategy requires.
strategy = tf.distribute.MultiWorkerMirroredStrategy(
    communication_options=tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
)

import numpy as np  # noqa: E402
from helpers import MULTIWORKER, conv_classifier  # noqa: E402

from xplique_maco import History, Neuron, maco  # noqa: E402
from xplique_maco._rendering.step import trace_count  # noqa: E402

with strategy.scope():
    model = conv_classifier()
history = History()
images, transparencies = maco(
    Neuron(model, "logits", [0, 1, 2, 3]), strategy=strategy, callbacks=[history], **MULTIWORKER
)
traced = trace_count()
maco(Neuron(model, "logits", [4, 5, 6, 7]), strategy=strategy, **MULTIWORKER)
np.savez(
    os.path.join(output, f"worker-{index}.npz"),
    images=images.numpy(),
    transparencies=transparencies.numpy(),
    history=history.values,
    retraces=trace_count() - traced,
    replicas=strategy.num_replicas_in_sync,
)
