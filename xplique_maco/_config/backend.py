"""The one requirement on Keras: its TensorFlow backend."""

from __future__ import annotations


def require_tensorflow() -> None:
    """Raises ImportError, saying how to fix it, when Keras runs on another backend."""
    import keras

    backend = keras.config.backend()
    if backend != "tensorflow":
        raise ImportError(
            "xplique_maco needs Keras with its TensorFlow backend (the optimisation runs under "
            f"tf.function with tf.signal FFTs), but Keras is running on the {backend!r} backend, "
            "chosen by the KERAS_BACKEND environment variable or ~/.keras/keras.json. Set "
            "KERAS_BACKEND=tensorflow before Python first imports keras, e.g. "
            "`KERAS_BACKEND=tensorflow jupyter lab`, or os.environ['KERAS_BACKEND'] = 'tensorflow' "
            "at the top of the notebook."
        )
