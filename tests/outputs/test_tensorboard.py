"""The TensorBoard callback: event files with each item's objective, images and transparency."""

import numpy as np
import tensorflow as tf
from helpers import conv_classifier

from xplique_maco import History, Neuron, TensorBoard, maco
from xplique_maco._rendering.step import trace_count


def read_events(folder) -> dict:
    """tag -> {step: value or decoded image} from every event file under `folder`."""
    found: dict = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                if value.metadata.plugin_data.plugin_name == "images":
                    width, height = int(tensor[0]), int(tensor[1])
                    decoded = tf.io.decode_png(tensor[2]).numpy()
                    assert decoded.shape[:2] == (height, width)
                    found.setdefault(value.tag, {})[event.step] = decoded
                else:
                    found.setdefault(value.tag, {})[event.step] = float(tensor)
    return found


def test_the_events_hold_the_objective_images_and_transparency_of_each_item(tmp_path):
    model, history = conv_classifier(), History()
    settings = dict(nb_steps=7, image_shape=(24, 24), nb_crops=2, seed=0, verbose=0)
    maco(Neuron(model, "logits", [1, 2]), **settings)  # traced once before the callback runs
    traces = trace_count()
    maco(Neuron(model, "logits", [1, 2]), callbacks=[TensorBoard(tmp_path, every=3), history], **settings)
    assert trace_count() == traces  # the callback does not retrace the step
    events = read_events(tmp_path)
    assert sorted(events) == [
        "image/0000",
        "image/0001",
        "objective/0000",
        "objective/0001",
        "transparency/0000",
        "transparency/0001",
    ]
    for item in (0, 1):
        scalars = events[f"objective/{item:04d}"]
        assert sorted(scalars) == [0, 3, 6]  # every 3 steps and the last
        np.testing.assert_allclose(
            [scalars[s] for s in (0, 3, 6)], history.values[[0, 3, 6], item], rtol=1e-6
        )
        assert sorted(events[f"image/{item:04d}"]) == [0, 3, 6]
        assert events[f"image/{item:04d}"][6].shape == (24, 24, 3)
        assert list(events[f"transparency/{item:04d}"]) == [6]
        assert events[f"transparency/{item:04d}"][6].shape == (24, 24, 1)
    # The images are those of the run as it goes: they change from step to step.
    frames = events["image/0001"]
    assert np.abs(frames[6].astype(int) - frames[0].astype(int)).mean() > 1
    assert frames[0].std() > 1  # not a blank picture
