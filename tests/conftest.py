"""Tiny models shared by the tests: dense, token and convolutional outputs, several channel counts."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


def conv_classifier(channels: int = 3, size: int = 32, name: str = "tiny_cnn") -> keras.Model:
    """Conv -> conv -> pooled logits, with fixed random weights."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, channels), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def token_model(size: int = 32) -> keras.Model:
    """A ViT-like stem: patches -> tokens (N, T, D) -> dense mixing -> pooled logits."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(12, 8, strides=8, name="patchify")(inputs)
    x = keras.layers.Reshape(((size // 8) ** 2, 12), name="tokens")(x)
    x = keras.layers.Dense(12, activation="gelu", name="mlp")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(5, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_vit")


@pytest.fixture(scope="session")
def model():
    return conv_classifier()


@pytest.fixture(scope="session")
def other_model():
    return conv_classifier(name="other_cnn")


@pytest.fixture(scope="session")
def tokens():
    return token_model()
