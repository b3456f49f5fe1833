"""Following a run: history, snapshots, recordings, progress bar; none of them retraces."""

import cv2
import numpy as np
import pytest
from helpers import CHUNKED, RISE, assert_refused
from PIL import Image

from xplique_maco import Callback, History, Layer, Neuron, Recorder, Snapshots, maco
from xplique_maco._rendering.step import trace_count

RUN = {**RISE, "seed": 0, "verbose": 0}


def test_history_rises_and_has_one_value_per_item_and_step(model):
    history = History()
    maco(Neuron(model, "logits", [2, 6]), nb_steps=40, callbacks=[history], **RUN)
    assert history.values.shape == (40, 2)
    assert (history.values[-5:].mean(axis=0) > history.values[:5].mean(axis=0)).all()


def test_snapshots_keep_every_k_steps_and_the_last(model):
    snapshots = Snapshots(every=4)
    images, _ = maco(Neuron(model, "logits", [1, 2]), nb_steps=10, callbacks=[snapshots], **RUN)
    assert snapshots.steps == [0, 4, 8, 9]
    assert snapshots.images.shape == (4, 2, 48, 48, 3)
    # The last snapshot is taken after step 9's update: it is the returned image, which is then
    # rolled (the image is periodic) to centre its transparency.
    for snapshot, image in zip(snapshots.images[-1], images.numpy(), strict=True):
        correlation = np.fft.ifft2(
            np.fft.fft2(image, axes=(0, 1)) * np.conj(np.fft.fft2(snapshot, axes=(0, 1))), axes=(0, 1)
        )
        shift = np.unravel_index(np.argmax(correlation.real.sum(axis=-1)), image.shape[:2])
        np.testing.assert_allclose(np.roll(snapshot, shift, axis=(0, 1)), image, atol=1e-6)
    assert np.abs(snapshots.images[0] - snapshots.images[-1]).mean() > 1e-3


def test_gif_recording_has_the_expected_frames_and_they_change(model, tmp_path):
    path = tmp_path / "runs" / "run.gif"
    maco(Neuron(model, "logits", [1, 2, 3]), nb_steps=12, callbacks=[Recorder(path, every=3)], **RUN)
    with Image.open(path) as gif:
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("RGB"), dtype=np.float64))
    assert len(frames) == 5  # steps 0, 3, 6, 9 and the last, 11
    assert frames[0].shape == (48, 3 * 48, 3)  # all items side by side
    assert np.abs(frames[0] - frames[-1]).mean() > 1.0


def test_mp4_recording_of_one_item(model, tmp_path):
    path = tmp_path / "run.mp4"
    maco(
        Neuron(model, "logits", [1, 2]),
        nb_steps=8,
        callbacks=[Recorder(path, every=2, item=1, fps=5)],
        **RUN,
    )
    video = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame.astype(np.float64))
    video.release()
    assert len(frames) == 5  # steps 0, 2, 4, 6, 7
    assert frames[0].shape[:2] == (48, 48)
    assert np.abs(frames[0] - frames[-1]).mean() > 1.0


def test_progress_bar_prints_under_verbose_only(model, capsys):
    objective = Neuron(model, "logits", [1, 2])
    settings = {**RUN, "verbose": 1}
    maco(objective, nb_steps=3, **settings)
    shown = capsys.readouterr().out
    assert "3/3" in shown and "objective" in shown and "max" in shown
    maco(objective, nb_steps=3, **RUN)
    assert capsys.readouterr().out == ""


def test_callbacks_do_not_retrace(model, tmp_path):
    objective = Neuron(model, "logits", [4, 5])
    maco(objective, nb_steps=2, **RUN)
    traced = trace_count()
    maco(objective, nb_steps=5, callbacks=[History(), Snapshots(2), Recorder(tmp_path / "r.gif")], **RUN)
    assert trace_count() == traced


def test_a_custom_callback_sees_every_hook(model):
    class Spy(Callback):
        def __init__(self):
            self.events = []

        def on_start(self, run):
            self.events.append(("start", run.nb_steps, run.batch_size, run.items, run.chunks))

        def wants_step(self, index):
            return index == 1

        def on_step(self, step):
            self.events.append(("step", step.index, step.items, step.values.shape, step.images().shape))

        def on_end(self, images, transparencies):
            self.events.append(("end", tuple(images.shape)))

    spy = Spy()
    maco(Neuron(model, "logits", [1, 2]), nb_steps=3, callbacks=[spy], **RUN)
    assert spy.events == [
        ("start", 3, 2, (0, 1), ((0, 1),)),
        ("step", 1, (0, 1), (2,), (2, 48, 48, 3)),
        ("end", (2, 48, 48, 3)),
    ]


def test_callbacks_see_one_run_over_the_chunks(model):
    class Steps(Callback):
        def on_start(self, run):
            self.run, self.seen = run, []

        def wants_step(self, index):
            return index == 2

        def on_step(self, step):
            self.seen.append((step.chunk, step.items, step.columns.tolist(), step.done, step.total))

    steps, history, snapshots = Steps(), History(), Snapshots(every=2)
    objective = Neuron(model, "logits", [4, 5, 6, 7, 8])
    images, _ = maco(
        objective,
        nb_steps=3,
        batch_size=2,
        items=[4, 0, 2, 3, 1],
        callbacks=[steps, history, snapshots],
        **RUN,
    )
    assert steps.run.items == (4, 0, 2, 3, 1) and steps.run.chunks == ((4, 0), (2, 3), (1,))
    assert steps.seen == [(0, (4, 0), [0, 1], 3, 9), (1, (2, 3), [2, 3], 6, 9), (2, (1,), [4], 9, 9)]
    assert history.values.shape == (3, 5) and np.isfinite(history.values).all()
    for chunk, columns in (([4, 0], [0, 1]), ([2, 3], [2, 3]), ([1], [4])):  # each chunk alone
        alone = History()
        maco(objective, nb_steps=3, items=chunk, callbacks=[alone], **RUN)
        np.testing.assert_array_equal(history.values[:, columns], alone.values)
    assert snapshots.steps == [0, 2] and snapshots.images.shape == (2, 5, 48, 48, 3)
    # The last snapshot is the returned images before they are rolled to centre their transparency.
    last, returned = (np.sort(x.reshape(5, -1), axis=1) for x in (snapshots.images[-1], images.numpy()))
    np.testing.assert_allclose(last, returned, atol=1e-6)


def test_history_joins_chunks(model):
    history = History()
    maco(Neuron(model, "logits", [0, 1, 2]), nb_steps=3, batch_size=2, callbacks=[history], **CHUNKED)
    assert history.values.shape == (3, 3)


def with_callbacks(*callbacks):
    """maco on two logits of the tiny classifier, two steps, with the given callbacks."""
    return lambda m: maco(Neuron(m, "logits", [1, 2]), nb_steps=2, callbacks=list(callbacks), **RUN)


# (bad call on the tiny classifier, error type, words the message must contain)
ERRORS = [
    pytest.param(
        with_callbacks(print), TypeError, "Callbacks must be instances of xplique_maco.Callback", id="print"
    ),
    pytest.param(
        lambda m: maco(Layer(m, "conv1"), callbacks=[3]),
        TypeError,
        "Callbacks must be instances",
        id="callbacks not a list",
    ),
    pytest.param(
        lambda m: with_callbacks(Recorder("run.avi"))(m),
        ValueError,
        "Recorder writes .gif or .mp4 files",
        id="recording to .avi",
    ),
    pytest.param(
        lambda m: with_callbacks(Recorder("run.gif", item=5))(m),
        ValueError,
        "Recorder item 5 is not rendered (the items are [0, 1])",
        id="recording an item not rendered",
    ),
    pytest.param(
        lambda m: with_callbacks(Snapshots(every=0))(m),
        ValueError,
        "`every` must be a positive int",
        id="snapshots every 0",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(model, call, error, message):
    assert_refused(lambda: call(model), error, message)
