"""xplique_maco: MACO feature visualisation (phase-only Fourier optimisation) for Keras 3."""

import keras as _keras

if _keras.config.backend() != "tensorflow":
    raise ImportError(
        "xplique_maco needs Keras with its TensorFlow backend (the optimisation runs under "
        f"tf.function with tf.signal FFTs), but Keras is running on the {_keras.config.backend()!r} "
        "backend, chosen by the KERAS_BACKEND environment variable or ~/.keras/keras.json. Set "
        "KERAS_BACKEND=tensorflow before Python first imports keras, e.g. "
        "`KERAS_BACKEND=tensorflow jupyter lab`, or os.environ['KERAS_BACKEND'] = 'tensorflow' "
        "at the top of the notebook."
    )

from ._callbacks import Callback, History, Recorder, Snapshots
from ._driver import fourier, maco
from ._kinds import Channel, Custom, Direction, Inversion, Layer, Neuron
from ._objective import Objective, evaluate
from ._optimizers import SGD, Adam, Nadam
from ._plots import plot_maco, plot_maco_grid, save_image, save_rgba, to_uint8
from ._spectrum import Spectrum, compute_spectrum, load_spectrum, natural_spectrum

__version__ = "0.1.0"

__all__ = [
    "maco",
    "fourier",
    "Objective",
    "Neuron",
    "Channel",
    "Layer",
    "Direction",
    "Inversion",
    "Custom",
    "evaluate",
    "Spectrum",
    "natural_spectrum",
    "compute_spectrum",
    "load_spectrum",
    "SGD",
    "Adam",
    "Nadam",
    "plot_maco",
    "plot_maco_grid",
    "save_image",
    "save_rgba",
    "to_uint8",
    "Callback",
    "History",
    "Snapshots",
    "Recorder",
]
