"""Fixtures shared by the tests: tiny models (built in helpers.py), inputs and a saved model file."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers import conv_classifier, token_model  # noqa: E402


@pytest.fixture(scope="session")
def model():
    return conv_classifier()


@pytest.fixture(scope="session")
def other_model():
    return conv_classifier(name="other_cnn")


@pytest.fixture(scope="session")
def tokens():
    return token_model()


@pytest.fixture(scope="module")
def inputs():
    """Three random 32 x 32 RGB images in [0, 1], the tiny models' input size."""
    return np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype("float32")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """conv_classifier() saved as a .keras file, for the command line."""
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    conv_classifier().save(path)
    return path
