"""Early stopping: each image stops when its objective stops rising (or a criterion holds), the
result says when, and on one device finished images leave the compiled step."""

import numpy as np
import pytest
from helpers import CHUNKED, LINEAR, assert_refused, conv_classifier, watched_model

from xplique_maco import Callback, EarlyStopping, History, Neuron, RunInfo, StepInfo, maco
from xplique_maco._rendering.step import trace_count

SETTINGS = {**CHUNKED, **LINEAR, "nb_crops": 2}


class Told(Callback):
    """Which items each step is told about (at every step)."""

    def on_start(self, run):
        self.items = {}

    def on_step(self, step):
        self.items[step.index] = step.items


def test_a_criterion_stops_each_item_when_it_holds_and_its_image_stays_as_it_was():
    """Item 0 is done at step 8, item 1 at 16, item 2 never: the result says so, and each stopped
    image is the one a run of exactly that many steps gives (the same seed, the same steps)."""
    model = conv_classifier()
    objective = Neuron(model, -1, [0, 1, 2])
    deadlines = {0: 8, 1: 16}

    class ByItem(Callback):  # the criterion is given the items still stepping: note which
        def on_step(self, step):
            self.items, self.index = step.items, step.index

    by_item = ByItem()

    def criterion(images, values):
        return np.array([deadlines.get(item, 10**9) <= by_item.index + 1 for item in by_item.items])

    stopping = EarlyStopping(min_rise=None, criterion=criterion, every=4, min_steps=4)
    told_items = Told()
    history = History()
    images, transparencies = maco(
        objective, nb_steps=24, callbacks=[by_item, stopping, told_items, history], **SETTINGS
    )
    assert stopping.stopped_at.tolist() == [8, 16, 24]
    assert (
        told_items.items[3] == (0, 1, 2) and told_items.items[11] == (1, 2) and told_items.items[19] == (2,)
    )
    assert np.isnan(history.values[8:, 0]).all() and np.isfinite(history.values[:8, 0]).all()
    # Item 0's image and transparency are those of 8 steps; the schedule is that of 24 steps, so
    # compare with a run of 24 steps stopped the same way for item 0 only.
    for item, steps in [(0, 8), (1, 16)]:
        alone_stop = EarlyStopping(
            min_rise=None,
            criterion=lambda images, values, s=steps: np.array([True]),
            every=steps,
            min_steps=steps,
        )
        alone, alone_transparency = maco(
            objective, items=[item], nb_steps=24, callbacks=[alone_stop], **SETTINGS
        )
        assert alone_stop.stopped_at.tolist() == [steps]
        np.testing.assert_allclose(images.numpy()[item], alone.numpy()[0], atol=1e-5)
        np.testing.assert_allclose(
            transparencies.numpy()[item], alone_transparency.numpy()[0], rtol=1e-4, atol=1e-7
        )
    full, _ = maco(objective, items=[2], nb_steps=24, **SETTINGS)
    np.testing.assert_allclose(images.numpy()[2], full.numpy()[0], atol=1e-5)


def test_stopped_items_cost_no_more_model_passes():
    seen = []
    model = watched_model(seen)
    objective = Neuron(model, -1, [0, 1, 2, 3])
    stops = {0: 4, 1: 4, 2: 8}

    class Index(Callback):
        def on_step(self, step):
            self.index, self.items = step.index, step.items

    now = Index()

    def criterion(images, values):
        return np.array([stops.get(item, 10**9) <= now.index + 1 for item in now.items])

    seen.clear()
    stopping = EarlyStopping(min_rise=None, criterion=criterion, every=4, min_steps=4)
    maco(objective, nb_steps=12, batch_size=4, crops_per_pass=8, callbacks=[now, stopping], **SETTINGS)
    passes = [size for size in seen if size not in (None, 1)]
    # Traced passes: 4 items x 2 crops, then 2 items (after step 4), then 1 (after step 8).
    assert passes == [8, 4, 2]
    assert stopping.stopped_at.tolist() == [4, 4, 8, 12]


def stops_of(stopping: EarlyStopping, values: dict[int, list[float]]) -> list[int]:
    """Tells `stopping` the values of each item at its checks; returns the step each item stops at."""
    items = tuple(values)
    steps = len(next(iter(values.values()))) * stopping.every
    stopping.on_start(RunInfo("o", items, (items,), steps, (8, 8), (0.0, 1.0)))
    going = list(items)
    for check in range(steps // stopping.every):
        index = (check + 1) * stopping.every - 1
        info = StepInfo(
            index,
            0,
            tuple(going),
            np.arange(len(going)),
            np.array([values[i][check] for i in going]),
            lambda: None,
            index + 1,
            steps,
        )
        stopping.on_step(info)
        done = stopping.should_stop(info)
        stopping.on_stopped(tuple(np.array(going)[done].tolist()), index + 1)
        going = np.array(going)[~done].tolist()
    return stopping.stopped_at.tolist()


def test_the_rise_rule():
    rising = [1.0 + 0.1 * k for k in range(12)]  # +10% per check: never stops
    flat = [1.0] * 12
    slowing = [1.0, 2.0, 3.0, 3.5, 3.8, 3.9, 3.901, 3.902, 3.903, 3.904, 3.905, 3.906]
    negative = [-5.0, -4.0, -3.0, -2.9, -2.899, -2.898, -2.897, -2.896, -2.895, -2.894, -2.893, -2.892]
    stopping = EarlyStopping(window=8, min_rise=0.01, every=4)  # min_steps 16: the 4th check
    result = stops_of(stopping, {0: rising, 1: flat, 2: slowing, 3: negative})
    # flat: stops at the first check allowed; slowing: once its last 8 steps (2 checks) rose < 1%;
    # negative values: the rise is relative to |best|.
    assert result == [48, 16, 32, 24]


def test_a_flat_objective_stops_at_min_steps():
    flat = EarlyStopping(window=8, min_rise=1e-3, every=4)
    maco(0.0 * Neuron(conv_classifier(), -1, [3, 4]), nb_steps=24, callbacks=[flat], **SETTINGS)
    assert flat.stopped_at.tolist() == [16, 16]  # min_steps = 2 x window


def test_early_stopping_reads_values_only_at_its_checks_and_does_not_retrace_the_next_call():
    model = conv_classifier()
    checked = []

    class Checks(EarlyStopping):
        def on_step(self, step):
            checked.append(step.index)
            super().on_step(step)

    never = lambda images, values: np.zeros(len(values), bool)  # noqa: E731
    stopping = Checks(min_rise=None, criterion=never, every=4)
    maco(Neuron(model, -1, [0]), nb_steps=16, callbacks=[stopping], **SETTINGS)
    assert checked == [3, 7, 11, 15]
    traces = trace_count()
    maco(
        Neuron(model, -1, [5]),
        nb_steps=16,
        callbacks=[Checks(min_rise=None, criterion=never, every=4)],
        **SETTINGS,
    )
    assert trace_count() == traces


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (dict(window=0), ValueError, "`window`"),
        (dict(min_rise=-1), ValueError, "`min_rise` must be a number >= 0"),
        (dict(min_rise=None), ValueError, "needs `min_rise` or a `criterion`"),
        (dict(criterion="judge"), TypeError, "`criterion` must be a function"),
        (dict(every=0), ValueError, "`every`"),
    ],
)
def test_bad_early_stopping_is_refused(arguments, error, message):
    assert_refused(lambda: EarlyStopping(**arguments), error, message)


def test_a_criterion_of_the_wrong_length_is_refused():
    stopping = EarlyStopping(min_rise=None, criterion=lambda images, values: [True], every=1, min_steps=1)
    with pytest.raises(ValueError, match="criterion returned 1 values for 2 images"):
        maco(Neuron(conv_classifier(), -1, [0, 1]), nb_steps=2, callbacks=[stopping], **SETTINGS)
