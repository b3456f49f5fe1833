"""`Diversity`: a penalty on how alike the feature statistics of K images of one item are."""

from __future__ import annotations

import warnings

import keras
import tensorflow as tf

from ..._config import checks
from ..objective import Objective, Term
from ..taps import LayerLike, find_tap

# Gram matrices are flattened and normalised; this keeps an all-zero one (a dead layer on a crop)
# at zero instead of dividing by zero.
_NORM_FLOOR = 1e-12


class Diversity(Objective):
    """The similarity of each image's features to those of the other images of its group.

    Subtract it from an objective to get K different images of each of its items:
    `Channel(model, "conv4", 7) - 0.5 * Diversity(model, "conv3", images=4)` renders four
    images of channel 7 that reach it in different ways. A batch of N items gives N groups of K
    images (images 0 .. K - 1 are the first item's), optimised in one call and one compiled step.

    The value of an image, on each crop, is the mean cosine similarity of the crop's Gram matrix
    (channels x channels, averaged over the layer's positions) with the Gram matrices of the same
    crop of the K - 1 other images of its group: 1 when their features co-occur alike, lower as
    they differ. The Gram matrix forgets where features are, so moving the same pattern around
    does not count as diverse. Its value is a similarity, as in Lucid and Lucent: give it a
    negative weight (maximising it makes the images alike, and `maco` warns). The weight to use
    depends on the scale of the rest of the objective (a logit of 20 needs more than a channel
    mean of 1): raise it until the images differ, lower it if the objective drops too far.

    The images of a group are optimised together, so a group is never split: `batch_size`
    holds whole groups (at least K images), `items` selects whole groups, and replicas get whole
    groups.

    Args:
        model: The Keras model to explain.
        layer: Layer name, path into a nested model, index in `model.layers`, layer object or
            symbolic tensor (as for `Neuron`); a convolutional or token layer (with positions).
            A middle layer compares textures and parts; a late one, objects.
        images: K, the number of images of each item, compared with each other (at least 2).

    Example:
    >>> objective = Channel(model, "conv2", 3) - 0.5 * Diversity(model, "conv1", images=4)
    >>> objective
    Channel(conv2, 3) - 0.5 * Diversity(conv1, 4 images)
    >>> images, _ = maco(objective, seed=0)  # (4, H, W, C): four images of channel 3
    """

    def __init__(self, model: keras.Model, layer: LayerLike, images: int = 4):
        images = checks.group_size("images", images)
        tap = find_tap(model, layer)
        if len(tap.shape) < 3:
            raise ValueError(
                f"Diversity compares features over positions, and layer {tap.key!r} is dense (shape "
                f"{tap.shape}): pick a convolutional or token layer."
            )
        text = f"Diversity({tap.key}, {images} images)"
        term = Term(Diversity, (tap,), {}, self.batched, text, static=images, group=images)
        super().__init__(model, (term,))

    @staticmethod
    def reduce(activations, arguments, static):
        """(N, K) mean cosine similarity of each crop's Gram matrix with the same crop of its group's
        other images, for N = G * images items in G consecutive groups."""
        (activation,) = activations
        images = static
        shape = tf.shape(activation)
        batch_size, crops, channels = shape[0], shape[1], shape[-1]
        features = tf.reshape(activation, [batch_size, crops, -1, channels])  # (N, K, P, C)
        positions = tf.cast(tf.shape(features)[2], tf.float32)
        gram = tf.matmul(features, features, transpose_a=True) / positions  # (N, K, C, C)
        gram = tf.reshape(gram, [-1, images, crops, channels * channels])  # (G, images, K, C * C)
        unit = tf.math.l2_normalize(gram, axis=-1, epsilon=_NORM_FLOOR)
        # Sum of the similarities with every image of the group, minus the one with itself.
        with_group = tf.reduce_sum(unit * tf.reduce_sum(unit, axis=1, keepdims=True), axis=-1)
        with_self = tf.reduce_sum(tf.square(unit), axis=-1)
        similarity = (with_group - with_self) / (images - 1)
        return tf.reshape(similarity, [batch_size, crops])

    @classmethod
    def check(cls, term, shapes, input_size):
        if term.coefficient > 0:
            warnings.warn(
                f"{term.text} has a positive weight ({term.coefficient:g}): it is a similarity, so "
                "maximising it makes the images alike. Subtract it to make them differ: "
                "`objective - 0.5 * Diversity(...)`.",
                UserWarning,
                stacklevel=5,
            )
