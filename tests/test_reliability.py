"""Reliability: a table of bad inputs, numerical safety, long sessions, interrupts, hostile files."""

import gc
import io
import pickle
import struct
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import conv_classifier
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xplique_maco import (
    Callback,
    Channel,
    Direction,
    Layer,
    Neuron,
    Spectrum,
    compute_spectrum,
    load_spectrum,
    maco,
    natural_spectrum,
    save_rgba,
    to_uint8,
)
from xplique_maco._engine import trace_count
from xplique_maco.atlas import parse_indices, parse_shard
from xplique_maco.zoo import load_model, read_torch_weights

FAST = dict(nb_steps=2, image_shape=(32, 32), nb_crops=1, verbose=0, seed=0)


def two_output_model():
    inputs = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(2, 3, name="a")(inputs)
    b = keras.layers.Conv2D(3, 3, name="b")(inputs)
    return keras.Model(inputs, [a, b], name="two_outputs")


M = conv_classifier(name="table_model")
NAN_VECTOR = np.full(16, np.nan)

# (what is wrong, call, expected error type, words the message must contain)
BAD_INPUTS = [
    ("objective of wrong type", lambda: maco("Neuron"), TypeError, "`objective` must be an Objective"),
    ("model of wrong type", lambda: Neuron(object(), 0, 0), TypeError, "Expected a keras.Model"),
    ("layer of wrong type", lambda: Neuron(M, ["logits"], 0), TypeError, "`layer` must be a layer name"),
    ("unknown layer", lambda: Neuron(M, "logit", 0), ValueError, "Did you mean 'logits'"),
    ("layer index too large", lambda: Neuron(M, 99, 0), ValueError, "accepted: -5 to 4"),
    ("index too large", lambda: Neuron(M, "logits", 10**9), ValueError, "accepted: 0 to 9"),
    ("negative index", lambda: Channel(M, "conv1", -1), ValueError, "accepted: 0 to 7"),
    ("empty index list", lambda: Neuron(M, "logits", []), ValueError, "non-empty list of ints"),
    ("float index", lambda: Channel(M, "conv1", 1.0), ValueError, "`index` must be an int"),
    ("NaN direction", lambda: Direction(M, "conv2", NAN_VECTOR), ValueError, "must be finite"),
    ("inf direction", lambda: Direction(M, "conv2", np.full(16, np.inf)), ValueError, "must be finite"),
    ("direction of strings", lambda: Direction(M, "conv2", ["a"] * 16), ValueError, "must be numbers"),
    (
        "wrong direction length",
        lambda: Direction(M, "conv2", np.ones(3)),
        ValueError,
        "must have shape (16,)",
    ),
    ("3-D directions", lambda: Direction(M, "conv2", np.ones((2, 2, 16))), ValueError, "(N, 16)"),
    (
        "objective times a string",
        lambda: Neuron(M, -1, 0) * "2",
        TypeError,
        "multiplied by a real number only",
    ),
    ("string times objective", lambda: "2" * Neuron(M, -1, 0), TypeError, "multiplied by a real number only"),
    (
        "objective over an array",
        lambda: Neuron(M, -1, 0) / np.ones(2),
        TypeError,
        "divided by a real number only",
    ),
    ("objective times inf", lambda: Neuron(M, -1, 0) * float("inf"), ValueError, "must be finite"),
    ("objective plus a number", lambda: Neuron(M, -1, 0) + 3, TypeError, "add to objectives only"),
    ("objective minus a number", lambda: Neuron(M, -1, 0) - 1, TypeError, "subtract objectives only"),
    (
        "huge nb_steps type",
        lambda: maco(Layer(M, "conv1"), nb_steps=1e9),
        ValueError,
        "`nb_steps` must be a positive int",
    ),
    (
        "bool nb_crops",
        lambda: maco(Layer(M, "conv1"), nb_crops=True),
        ValueError,
        "`nb_crops` must be a positive int",
    ),
    (
        "image_shape of floats",
        lambda: maco(Layer(M, "conv1"), image_shape=(32.0, 32.0)),
        ValueError,
        "pair of ints",
    ),
    (
        "image_shape negative",
        lambda: maco(Layer(M, "conv1"), image_shape=(-32, 32)),
        ValueError,
        "at least (1, 1)",
    ),
    (
        "crop_size zero",
        lambda: maco(Layer(M, "conv1"), crop_size=0),
        ValueError,
        "0 < smallest <= largest <= 1",
    ),
    ("crop_size above one", lambda: maco(Layer(M, "conv1"), crop_size=(0.5, 2)), ValueError, "<= 1"),
    (
        "NaN noise",
        lambda: maco(Layer(M, "conv1"), noise=float("nan")),
        ValueError,
        "`noise` must be a finite number",
    ),
    (
        "inf learning rate",
        lambda: maco(Layer(M, "conv1"), learning_rate=float("inf")),
        ValueError,
        "`learning_rate`",
    ),
    (
        "values_range of strings",
        lambda: maco(Layer(M, "conv1"), values_range=("a", "b")),
        ValueError,
        "pair (low, high)",
    ),
    (
        "values_range with NaN",
        lambda: maco(Layer(M, "conv1"), values_range=(0, float("nan"))),
        ValueError,
        "finite",
    ),
    (
        "values_range of three",
        lambda: maco(Layer(M, "conv1"), values_range=(0, 1, 2)),
        ValueError,
        "pair (low, high)",
    ),
    (
        "optimizer object",
        lambda: maco(Layer(M, "conv1"), optimizer=keras.optimizers.Adam()),
        ValueError,
        "Unknown optimizer",
    ),
    (
        "seed too large",
        lambda: maco(Layer(M, "conv1"), seed=2**64),
        ValueError,
        "`seed` must be None or an int",
    ),
    ("seed string", lambda: maco(Layer(M, "conv1"), seed="0"), ValueError, "`seed` must be None or an int"),
    (
        "magnitude with NaN",
        lambda: maco(Layer(M, "conv1"), magnitude=np.full((3, 8, 5), np.nan)),
        ValueError,
        "finite and non-negative",
    ),
    (
        "negative magnitude",
        lambda: maco(Layer(M, "conv1"), magnitude=-np.ones((3, 8, 5))),
        ValueError,
        "non-negative",
    ),
    (
        "magnitude of wrong rank",
        lambda: maco(Layer(M, "conv1"), magnitude=np.ones((8, 5))),
        ValueError,
        "(C, H, W // 2 + 1)",
    ),
    ("verbose 2", lambda: maco(Layer(M, "conv1"), verbose=2), ValueError, "`verbose` must be 0, 1 or 'auto'"),
    (
        "callbacks not a list",
        lambda: maco(Layer(M, "conv1"), callbacks=[3]),
        TypeError,
        "Callbacks must be instances",
    ),
    (
        "batch_size zero",
        lambda: maco(Layer(M, "conv1"), batch_size=0),
        ValueError,
        "`batch_size` must be a positive int",
    ),
    ("items out of range", lambda: maco(Layer(M, "conv1"), items=[1]), ValueError, "batch positions in 0..0"),
    (
        "strategy of wrong type",
        lambda: maco(Layer(M, "conv1"), strategy="gpu"),
        TypeError,
        "tf.distribute.Strategy",
    ),
    ("tiny image", lambda: maco(Layer(M, "conv1"), image_shape=(3, 3)), ValueError, "is too small"),
    (
        "model_input_size too small",
        lambda: maco(Layer(M, "conv1"), model_input_size=(2, 2)),
        ValueError,
        "conflicts",
    ),
    (
        "unsupported rank",
        lambda: Layer(
            keras.Model(i := keras.Input((4, 4, 3)), keras.layers.Reshape((2, 2, 4, 3), name="r")(i)), "r"
        ),
        ValueError,
        "rank 5",
    ),
    (
        "several inputs",
        lambda: maco(
            Neuron(
                keras.Model(
                    [a := keras.Input((8, 8, 3)), b := keras.Input((8, 8, 3))],
                    keras.layers.Add(name="s")([a, b]),
                ),
                "s",
                0,
            )
        ),
        ValueError,
        "has 2 inputs",
    ),
    (
        "channels-first input",
        lambda: maco(
            Neuron(keras.Model(c := keras.Input((3, 16, 16)), keras.layers.Conv2D(2, 1, name="k")(c)), "k", 0)
        ),
        ValueError,
        "channels-first",
    ),
    (
        "spectrum width float",
        lambda: Spectrum(np.ones((1, 4, 3)), [0.5], [[1.0]], 4.5),
        ValueError,
        "`width` must be an int >= 2",
    ),
    (
        "spectrum resized to 0",
        lambda: natural_spectrum(1).resized(0, 0),
        ValueError,
        "`height` must be an int >= 2",
    ),
    ("spectrum channels 0", lambda: natural_spectrum(0), ValueError, "`channels` must be a positive int"),
    (
        "spectrum of 5-D images",
        lambda: compute_spectrum(np.zeros((1, 1, 8, 8, 1))),
        ValueError,
        "Images must be",
    ),
    (
        "spectrum size 4",
        lambda: compute_spectrum(np.zeros((8, 8)), size=4),
        ValueError,
        "`size` must be an int >= 8",
    ),
    ("to_uint8 bad range", lambda: to_uint8(np.zeros(3), (1, 1)), ValueError, "low < high"),
    (
        "rgba wrong mask shape",
        lambda: save_rgba("/tmp/x.png", np.zeros((4, 4, 3)), np.zeros((5, 5, 1))),
        ValueError,
        "does not match",
    ),
    (
        "unknown zoo model",
        lambda: load_model("vgg19"),
        ValueError,
        "Accepted: efficientnet_lite0, mobilenet_v2, vgg16_conv",
    ),
    ("bad index range", lambda: parse_indices("10:"), ValueError, "neither an index nor a range"),
    ("bad shard", lambda: parse_shard("1-4"), ValueError, "'I/N'"),
]


@pytest.mark.parametrize("what, call, error, words", BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_gets_a_clear_error_before_any_computation(what, call, error, words):
    traced = trace_count()
    with pytest.raises(error) as raised:
        call()
    assert words in str(raised.value), f"{what}: {raised.value}"
    assert trace_count() == traced, f"{what}: traced before failing"


def test_integer_values_range_and_multi_output_models_are_accepted():
    images, _ = maco(Layer(M, "conv1"), values_range=(0, 255), **FAST)
    assert 0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255
    images, _ = maco(Channel(two_output_model(), "b", 2), **FAST)
    assert np.isfinite(images.numpy()).all()


def nan_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    undefined = keras.layers.Lambda(lambda t: keras.ops.log(t - 100.0), name="log")(
        x
    )  # log of negatives: NaN
    return keras.Model(inputs, undefined)


def dead_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3, kernel_initializer="zeros", bias_initializer="zeros", name="conv")(inputs)
    return keras.Model(inputs, keras.layers.ReLU(name="relu")(x))


def test_nan_objective_warns_and_never_reaches_the_images():
    with pytest.warns(RuntimeWarning, match="NaN or infinite at the last step for batch items \\[0\\]"):
        images, transparencies = maco(Channel(nan_model(), "log", 0), **{**FAST, "nb_steps": 5})
    assert np.isfinite(images.numpy()).all() and np.isfinite(transparencies.numpy()).all()


def test_vanishing_gradient_leaves_a_finite_image():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a zero gradient is not an error
        images, transparencies = maco(Channel(dead_model(), "relu", 1), **{**FAST, "nb_steps": 5})
    assert np.isfinite(images.numpy()).all()
    assert float(tf.reduce_max(transparencies)) == 0.0


def resident_megabytes() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def test_fifty_calls_neither_retrace_nor_grow_memory(model):
    def call(index):
        settings = {**FAST, "seed": index}
        maco(
            Neuron(model, "logits", index % 10) + 0.1 * index * Channel(model, "conv2", index % 16),
            **settings,
        )

    for index in range(5):  # warm up: traces, caches, allocator pools
        call(index)
    gc.collect()
    traced, before = trace_count(), resident_megabytes()
    for index in range(50):
        call(index)
    gc.collect()
    grown = resident_megabytes() - before
    print(f"RSS growth over 50 maco calls: {grown:.1f} MB")  # shown with pytest -s
    assert trace_count() == traced
    assert grown < 40, f"RSS grew by {grown:.1f} MB over 50 calls"


def test_keyboard_interrupt_leaves_tensorflow_usable(model):
    class Interrupt(Callback):
        def on_step(self, step):
            if step.index == 2:
                raise KeyboardInterrupt

    objective = Neuron(model, "logits", [1, 2])
    with pytest.raises(KeyboardInterrupt):
        maco(objective, callbacks=[Interrupt()], **{**FAST, "nb_steps": 6})
    after, _ = maco(objective, **{**FAST, "nb_steps": 6})
    fresh, _ = maco(objective, **{**FAST, "nb_steps": 6})
    np.testing.assert_array_equal(after.numpy(), fresh.numpy())


HEADER = b"".join(
    pickle.dumps(value, protocol=2)
    for value in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True})
)


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000), st.booleans())
def test_weight_reader_refuses_random_bytes(tmp_path, payload, with_header):
    path = tmp_path / "random.pth"
    path.write_bytes((HEADER if with_header else b"") + payload)
    try:
        read_torch_weights(path)
    except ValueError:
        pass  # UnsafeWeightsError is a ValueError too


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_weight_reader_survives_mutations_of_a_real_file(tmp_path, data):
    buffer = io.BytesIO()
    buffer.write(HEADER)
    body = (
        b"\x80\x02ccollections\nOrderedDict\n)RX\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n"
        b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ\x04\x00\x00\x00tQ"
        b"J\x00\x00\x00\x00(J\x02\x00\x00\x00J\x02\x00\x00\x00t(J\x02\x00\x00\x00J\x01\x00\x00\x00t\x89"
        b"ccollections\nOrderedDict\n)RtRs."
    )
    buffer.write(body + pickle.dumps(["0"], protocol=2) + struct.pack("<q", 4) + b"\x00" * 16)
    original = bytearray(buffer.getvalue())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    path = tmp_path / "mutated.pth"
    path.write_bytes(bytes(original))
    try:
        weights = read_torch_weights(path)
    except ValueError:
        return
    for array in weights.values():  # whatever reads must be a sane array inside the file's data
        assert isinstance(array, np.ndarray) and array.size <= 4


@settings(max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000))
def test_spectrum_loader_refuses_random_bytes(tmp_path, payload):
    path = tmp_path / "random.npz"
    path.write_bytes(payload)
    try:
        load_spectrum(path)
    except ValueError:
        pass


def test_spectrum_loader_refuses_hostile_npz(tmp_path):
    for arrays, message in [
        (
            dict(magnitude=np.ones((1, 4, 3)), mean=[0.5], recorrelation=[[1.0]], width=np.array([4, 4])),
            "malformed width",
        ),
        (dict(magnitude=np.full((1, 4, 3), np.inf), mean=[0.5], recorrelation=[[1.0]], width=4), "finite"),
        (dict(magnitude=np.ones((1, 4, 3)), mean=[0.5], recorrelation=[[1.0]]), "lacks arrays"),
    ]:
        path = tmp_path / "hostile.npz"
        np.savez(path, **arrays)
        with pytest.raises(ValueError, match=message):
            load_spectrum(path)
