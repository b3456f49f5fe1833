"""Device memory: default chunks and passes that fit it, and recovery when a device runs out anyway.

There is no GPU here, so both are simulated on the CPU: a fake accelerator with a fake memory size
(`fake_accelerator`), and models that run out of memory above a number of crops per model pass
(`RunsOut`, the error raised while the pass is traced) or at run time (`AllocatesTooMuch`, a real
allocation failure of the CPU allocator, inside the compiled step).
"""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import CHUNKED, LINEAR, Plan, RunsOut, conv_classifier, retried, wrapped

from xplique_maco import Callback, History, Neuron, maco
from xplique_maco._rendering import memory as _memory
from xplique_maco._rendering import optimize as _optimize
from xplique_maco._rendering import plan as _plan
from xplique_maco._rendering.step import trace_count

SETTINGS = {**CHUNKED, **LINEAR, "nb_steps": 2, "nb_crops": 4}


class AllocatesTooMuch(keras.layers.Layer):
    """Identity that, in the first pass after `armed` is set, asks the allocator for a petabyte
    while the step runs (and disarms itself, so the retried chunk runs normally)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.armed = tf.Variable(False, trainable=False)

    def call(self, crops):
        armed = self.armed.read_value()

        def allocate():  # 2**48 floats: more than any address space, so it always fails
            return crops + tf.random.uniform(tf.stack([tf.constant(2**48, tf.int64)]))[0]

        with tf.control_dependencies([self.armed.assign(False)]):
            return tf.cond(armed, allocate, lambda: tf.identity(crops))


@pytest.mark.parametrize(
    "limit, expected",
    [
        # 2 images x 4 crops = 8 crops per pass; a limit of 4 takes one halving of the pass.
        (4, dict(batch_size=2, crops_per_pass=4, retries=1)),
        # A limit of 1: passes of 4, then 2 (one crop of each image), then chunks of one image.
        (1, dict(batch_size=1, crops_per_pass=1, retries=3)),
    ],
)
def test_out_of_memory_halves_the_pass_then_the_chunk_and_gives_the_images_of_those_settings(limit, expected):
    model = wrapped(RunsOut(limit))
    objective = Neuron(model, -1, [0, 1, 2])
    traces = trace_count()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        images, transparencies = maco(objective, batch_size=2, crops_per_pass=8, **SETTINGS)
    messages = retried(record)
    assert len(messages) == expected["retries"]
    wanted = f"batch_size={expected['batch_size']}, crops_per_pass={expected['crops_per_pass']}"
    assert wanted in messages[-1] and "Finished chunks are kept" in messages[-1]
    # Each retry traces the step once; chunks of the last size share it (a smaller last one once more).
    assert trace_count() - traces <= expected["retries"] + 2
    smaller = dict(batch_size=expected["batch_size"], crops_per_pass=expected["crops_per_pass"])
    direct, direct_transparencies = maco(Neuron(conv_classifier(), -1, [0, 1, 2]), **smaller, **SETTINGS)
    np.testing.assert_allclose(images.numpy(), direct.numpy(), atol=1e-6)
    np.testing.assert_allclose(transparencies.numpy(), direct_transparencies.numpy(), atol=1e-6)


def test_out_of_memory_at_one_crop_of_one_image_says_what_to_lower(monkeypatch):
    def render(task, items, callbacks):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating (injected: always)")

    monkeypatch.setattr(_optimize, "run_chunk", render)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(
            tf.errors.ResourceExhaustedError, match="even with one crop of one image"
        ) as error:
            maco(Neuron(conv_classifier(), -1, [0, 1]), batch_size=2, **SETTINGS)
    assert "lower `model_input_size`, `image_shape` or `nb_crops`" in str(error.value)
    assert "injected: always" in str(error.value)
    assert len(retried(record)) == 3  # 2 images x 4 crops -> 2 x 2 -> 2 x 1 -> 1 x 1


def test_finished_chunks_are_kept_when_a_later_chunk_runs_out(monkeypatch):
    """The first chunk renders once; the second runs out once and restarts in smaller passes; the
    callbacks see one run, with the second chunk's steps told again."""
    real = _optimize.run_chunk
    calls = []

    def render(task, items, callbacks):
        calls.append((tuple(int(i) for i in items), task.plan.crops_per_pass))
        if len(calls) == 2:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM (injected in the second chunk)")
        return real(task, items, callbacks)

    monkeypatch.setattr(_optimize, "run_chunk", render)
    history, plan = History(), Plan()
    objective = Neuron(conv_classifier(), -1, [0, 1, 2, 3])
    with pytest.warns(RuntimeWarning, match="retrying with chunks of 2 images and model passes of 4 crops"):
        images, _ = maco(objective, batch_size=2, crops_per_pass=8, callbacks=[history, plan], **SETTINGS)
    assert calls == [((0, 1), 8), ((2, 3), 8), ((2, 3), 4)]
    assert plan.chunks == ((0, 1), (2, 3))
    assert np.isfinite(history.values).all()
    monkeypatch.setattr(_optimize, "run_chunk", real)
    again = Neuron(conv_classifier(), -1, [0, 1, 2, 3])
    first, _ = maco(again, items=[0, 1], batch_size=2, crops_per_pass=8, **SETTINGS)
    second, _ = maco(again, items=[2, 3], batch_size=2, crops_per_pass=4, **SETTINGS)
    np.testing.assert_array_equal(images.numpy()[:2], first.numpy())  # the kept chunk, untouched
    np.testing.assert_allclose(images.numpy()[2:], second.numpy(), atol=1e-6)


class ArmsAtSecondChunk(Callback):
    def __init__(self, layer):
        self.layer, self.chunks = layer, []

    def on_step(self, step):
        if step.chunk == 1 and 1 not in self.chunks:
            self.layer.armed.assign(True)  # the next step's pass allocates too much
        self.chunks.append(step.chunk)


@pytest.mark.slow
def test_an_allocation_failure_inside_the_compiled_step_is_recovered():
    """A real ResourceExhaustedError of the allocator at run time (TensorFlow retries the allocation
    for about 10 s before it gives up), in the second chunk."""
    layer = AllocatesTooMuch()
    arming = ArmsAtSecondChunk(layer)
    objective = Neuron(wrapped(layer), -1, [0, 1, 2, 3])
    with pytest.warns(RuntimeWarning, match="Out of memory with chunks of 2 images"):
        images, _ = maco(objective, batch_size=2, crops_per_pass=8, callbacks=[arming], **SETTINGS)
    assert arming.chunks[:3] == [0, 0, 1] and arming.chunks[3:] == [1, 1]
    again = Neuron(conv_classifier(), -1, [0, 1, 2, 3])
    direct, _ = maco(again, items=[2, 3], batch_size=2, crops_per_pass=4, **SETTINGS)
    np.testing.assert_allclose(images.numpy()[2:], direct.numpy(), atol=1e-6)


# ---- defaults from the device's memory ----


def fake_accelerator(monkeypatch, memory: int | None, in_use: int = 0):
    """The CPU taken for an accelerator of `memory` bytes (None: a size the runtime does not tell)."""
    monkeypatch.setattr(_plan, "_on_accelerators", lambda strategy: True)
    monkeypatch.setattr(_memory, "accelerator", lambda: "/device:CPU:0")
    monkeypatch.setattr(_memory, "device_memory", lambda device: memory)
    monkeypatch.setattr(_memory, "memory_in_use", lambda device: in_use)


def memory_for(images: int, crops: int, per_crop: int, image_shape=(40, 40), glances=True) -> int:
    """The device memory whose budget holds `images` images (with glances: the default) and
    `crops` crops exactly."""
    need = images * _memory.item_cost(image_shape, 3, glances) + crops * per_crop
    return int(np.ceil(need / _memory.MEMORY_FRACTION)) + 16


def test_the_cost_per_crop_is_derived_from_the_probe_where_the_allocator_keeps_no_peak():
    inputs = keras.Input((None, None, 3))
    features = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    extractor = keras.Model(inputs, keras.layers.Conv2D(16, 3, strides=2, activation="relu")(features))
    small = _memory.crop_cost(extractor, (32, 32, 3), "/device:CPU:0")
    large = _memory.crop_cost(extractor, (64, 64, 3), "/device:CPU:0")
    # At least the two convolutions' outputs of one crop: 30 x 30 x 8 + 14 x 14 x 16 floats.
    assert small >= (30 * 30 * 8 + 14 * 14 * 16) * 4
    assert 3.5 * small < large < 4.5 * small  # activations grow with the crop's area


def test_the_cost_per_crop_is_measured_where_the_allocator_keeps_a_peak(monkeypatch):
    state = {"current": 1_000, "peak": 1_000}

    def memory_info(device):
        return dict(state)

    def reset(device):
        state["peak"] = state["current"]

    real_probe = _memory._probe

    def probe(extractor, others=()):
        run = real_probe(extractor, others)

        def measured(crops):
            state["peak"] = state["current"] + 7_000 * crops.shape[0]  # what the allocator would see
            return run(crops)

        return measured

    monkeypatch.setattr(tf.config.experimental, "get_memory_info", memory_info)
    monkeypatch.setattr(tf.config.experimental, "reset_memory_stats", reset)
    monkeypatch.setattr(_memory, "_probe", probe)
    model = conv_classifier()
    extractor = keras.Model(model.inputs[0], model.get_layer("conv1").output)
    assert _memory.crop_cost(extractor, (32, 32, 3), "/device:GPU:7") == 7_000


def test_on_an_accelerator_the_default_chunks_fit_its_memory(monkeypatch):
    """A device that holds 2 images of 4 crops: the defaults choose chunks of 2 in one pass, so a
    model that runs out above 8 crops never does (everything at once, 24 crops, would)."""
    model = wrapped(RunsOut(8))
    objective = Neuron(model, -1, [0, 1, 2, 3, 4, 5])
    from xplique_maco._objectives.extractor import feature_model

    per_crop = _memory.crop_cost(feature_model(model, objective.taps), (32, 32, 3), "/device:CPU:0")
    fake_accelerator(monkeypatch, memory_for(2, 8, per_crop))
    plan = Plan()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        images, _ = maco(objective, callbacks=[plan], **SETTINGS)
    assert retried(record) == []
    assert plan.chunks == ((0, 1), (2, 3), (4, 5))
    expected, _ = maco(Neuron(conv_classifier(), -1, list(range(6))), batch_size=2, **SETTINGS)
    np.testing.assert_allclose(images.numpy(), expected.numpy(), atol=1e-6)


def test_on_an_accelerator_too_small_for_one_image_the_defaults_cut_passes(monkeypatch):
    model = wrapped(RunsOut(3))
    objective = Neuron(model, -1, [0, 1])
    from xplique_maco._objectives.extractor import feature_model

    per_crop = _memory.crop_cost(feature_model(model, objective.taps), (32, 32, 3), "/device:CPU:0")
    fake_accelerator(monkeypatch, memory_for(1, 3, per_crop))
    plan = Plan()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        maco(objective, callbacks=[plan], **SETTINGS)
    assert retried(record) == []
    assert plan.chunks == ((0,), (1,))


def test_on_an_accelerator_the_memory_in_use_is_left_out(monkeypatch):
    model = conv_classifier()
    objective = Neuron(model, -1, list(range(6)))
    from xplique_maco._objectives.extractor import feature_model

    per_crop = _memory.crop_cost(feature_model(model, objective.taps), (32, 32, 3), "/device:CPU:0")
    plan = Plan()
    fake_accelerator(monkeypatch, memory_for(4, 16, per_crop))
    maco(objective, callbacks=[plan], **{**SETTINGS, "nb_steps": 1})
    assert [len(chunk) for chunk in plan.chunks] == [4, 2]
    weights = memory_for(2, 8, per_crop) - 16  # half the device is taken already
    fake_accelerator(monkeypatch, memory_for(4, 16, per_crop), in_use=weights)
    maco(objective, callbacks=[plan], **{**SETTINGS, "nb_steps": 1})
    assert [len(chunk) for chunk in plan.chunks] == [2, 2, 2]


def test_on_an_accelerator_glances_count_their_blurred_copy(monkeypatch):
    """A device that holds 4 images of 4 crops exactly holds fewer once a crop of each is a glance:
    the glance's blurred copy and its gradient cost memory on the image side."""
    model = conv_classifier()
    objective = Neuron(model, -1, list(range(6)))
    from xplique_maco._objectives.extractor import feature_model

    per_crop = _memory.crop_cost(feature_model(model, objective.taps), (32, 32, 3), "/device:CPU:0")
    assert _memory.item_cost((40, 40), 3, True) > _memory.item_cost((40, 40), 3)
    fake_accelerator(monkeypatch, memory_for(4, 16, per_crop, glances=False))
    plan = Plan()
    maco(objective, callbacks=[plan], glance=0.0, **{**SETTINGS, "nb_steps": 1})
    assert [len(chunk) for chunk in plan.chunks] == [4, 2]
    maco(objective, callbacks=[plan], glance=0.25, **{**SETTINGS, "nb_steps": 1})
    assert [len(chunk) for chunk in plan.chunks] == [3, 3]


def test_on_an_accelerator_of_unknown_memory_everything_runs_at_once(monkeypatch):
    fake_accelerator(monkeypatch, None)
    plan = Plan()
    maco(Neuron(conv_classifier(), -1, list(range(5))), callbacks=[plan], **{**SETTINGS, "nb_steps": 1})
    assert plan.chunks == ((0, 1, 2, 3, 4),)


def test_an_explicit_batch_size_on_an_accelerator_gets_passes_that_fit(monkeypatch):
    seen = []

    class Sizes(keras.layers.Layer):
        def call(self, crops):
            seen.append(crops.shape[0])
            return crops

    model = wrapped(Sizes())
    objective = Neuron(model, -1, [0, 1, 2, 3])
    from xplique_maco._objectives.extractor import feature_model

    per_crop = _memory.crop_cost(feature_model(model, objective.taps), (32, 32, 3), "/device:CPU:0")
    fake_accelerator(monkeypatch, memory_for(4, 8, per_crop))  # 4 images, but 8 of their 16 crops
    seen.clear()
    maco(objective, batch_size=4, **{**SETTINGS, "nb_steps": 1})
    assert [size for size in seen if size not in (None, 1)] == [8, 8]


@pytest.mark.parametrize(
    "sizes, replicas, expected",
    [
        ((4, None), 1, (4, 8)),  # 4 images x 4 crops in one pass -> 2 crops of each
        ((4, 8), 1, (4, 4)),  # then one crop of each
        ((4, 4), 1, (2, 2)),  # then half the images, one crop each
        ((1, 1), 1, None),  # nothing smaller
        ((8, None), 2, (8, 8)),  # per device: 4 images x 4 crops -> 2 each
        ((2, 2), 2, (2, 1)),  # one image per device: its 2 crops per pass -> 1
        ((2, 1), 2, None),  # one image per device, one crop: nothing smaller
    ],
)
def test_the_smaller_sizes(sizes, replicas, expected):
    result = _memory.smaller(_memory.Sizes(*sizes), nb_crops=4, replicas=replicas)
    assert result == (None if expected is None else _memory.Sizes(*expected))
