"""Random crops resized to the model's input, plus noise: the only place that knows about crops.

Every random draw of batch item i depends only on (its seed, the step), never on the other
items, so an objective renders the same image alone or inside any batch.

A 2-tap bilinear sample of a crop shrunk by a factor r > 1 aliases the frequencies above its
Nyquist. With antialiasing, boxes shrunk by at least 1.5, 2, 3 or 4 sample a copy of the image
blurred by a triangle of that half-width (the filter of antialiased bilinear resizing), made
once per step; boxes shrunk less sample the image itself. When the image is not larger than
the model's input, no copy is made.

Glances: the first G crops of each image are the whole image (the largest box) seen as a
thumbnail, a copy blurred as if shrunk to `GLANCE_SCALE` of the model's input side (64 of 224
pixels) and resized back. They ask the model to recognise the object at a glance, not only as
texture up close.

Crops and noise run as XLA-compiled functions. `tf.image.crop_and_resize` is not used: on CPU
its gradient with respect to the image adds the contributions of all boxes of one image from
parallel threads without synchronisation, so it changes from run to run and can be badly wrong
(off by as much as the gradient itself with a few dozen boxes). Here the backward pass is an explicit adjoint, also compiled: exact on every device
and run-to-run identical on CPU (a test checks it); on GPU, XLA may sum the scatter with
atomics, so the last bits can vary there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import tensorflow as tf

# Streams of one step: different purposes never share random numbers.
_BOXES, _NOISE = 0, 1
# Shrink factors from which a box samples a blurred copy of the image (see the module docstring).
_BLUR_FACTORS = (1.5, 2.0, 3.0, 4.0)
# A glance sees the image as a thumbnail of this fraction of the model's input side (64 / 224).
GLANCE_SCALE = 2.0 / 7.0
# A counter-based generator, which XLA compiles to fast code on CPUs and GPUs.
_ALGORITHM = "threefry"


def _stream(item_seed: tf.Tensor, step: tf.Tensor, purpose: int) -> tf.Tensor:
    # Explicit algorithms: "auto_select" may pick another generator on another device.
    seed = tf.random.experimental.stateless_fold_in(item_seed, step, alg="philox")
    return tf.random.experimental.stateless_fold_in(seed, purpose, alg="philox")


def _per_item(item_seeds: tf.Tensor, draw) -> tf.Tensor:
    """The draws of all items, item after item along the first axis: (N * rows, ...).

    `draw(seed)` gives one item's rows from that item's seed. A loop in the graph (not one
    draw per item written into it) keeps the traced step the same size for any number of
    items, and gives each item the same numbers as drawing it alone.
    """
    draws = tf.map_fn(draw, item_seeds, fn_output_signature=tf.float32)
    return tf.reshape(draws, (-1, *draws.shape[2:]))


def _axis_taps(start: tf.Tensor, length: tf.Tensor, size: int, samples: int, wrap: bool):
    """Bilinear taps along one axis: for each box, `samples` points spread over [start, start + length).

    With `wrap`, the image is one period of a periodic signal: positions past an edge read the
    other side. Otherwise they are clamped to the edge pixels.
    """
    centres = (tf.range(samples, dtype=tf.float32)[None] + 0.5) * (length[:, None] / samples)
    position = start[:, None] + centres - 0.5
    if not wrap:
        position = tf.clip_by_value(position, 0.0, size - 1.0)
    low = tf.floor(position)
    weight = position - low
    low = tf.cast(low, tf.int32)
    if wrap:
        return tf.math.floormod(low, size), tf.math.floormod(low + 1, size), weight
    return low, tf.minimum(low + 1, size - 1), weight


def _bilinear_crops(images, boxes, box_indices, output_size, wrap):
    """Separable bilinear sampling (pixel centres at half-integers) of each box, by gathers."""
    _, height, width, channels = images.shape
    out_height, out_width = output_size
    top, left = boxes[:, 0] * height, boxes[:, 1] * width
    box_height = (boxes[:, 2] - boxes[:, 0]) * height
    box_width = (boxes[:, 3] - boxes[:, 1]) * width
    row_low, row_high, row_weight = _axis_taps(top, box_height, height, out_height, wrap)
    col_low, col_high, col_weight = _axis_taps(left, box_width, width, out_width, wrap)
    rows_of_all = tf.reshape(images, (-1, width, channels))
    offset = box_indices[:, None] * height
    row_weight = row_weight[:, :, None, None]
    rows = (
        tf.gather(rows_of_all, offset + row_low) * (1.0 - row_weight)
        + tf.gather(rows_of_all, offset + row_high) * row_weight
    )
    col_weight = col_weight[:, None, :, None]
    return (
        tf.gather(rows, col_low, axis=2, batch_dims=1) * (1.0 - col_weight)
        + tf.gather(rows, col_high, axis=2, batch_dims=1) * col_weight
    )


@tf.function(jit_compile=True)
def _compiled_crops(images, boxes, box_indices, output_size, wrap):
    return _bilinear_crops(images, boxes, box_indices, output_size, wrap)


@tf.function(jit_compile=True)
def _compiled_crops_adjoint(images_shape, boxes, box_indices, output_size, wrap, upstream):
    # The adjoint depends only on the boxes, not on the pixels: it is taken at zeros (which XLA
    # folds away), so the images need not stay in memory until the backward pass.
    images = tf.zeros(images_shape)
    with tf.GradientTape() as tape:
        tape.watch(images)
        crops = _bilinear_crops(images, boxes, box_indices, output_size, wrap)
    return tape.gradient(crops, images, output_gradients=upstream)


def crop_and_resize(images, boxes, box_indices, output_size, wrap: bool = False):
    """Bilinear crops of `images` resized to `output_size`, with an exact, deterministic gradient.

    Args:
        images: (N, H, W, C) images.
        boxes: (B, 4) boxes (top, left, bottom, right) as fractions of the image size.
        box_indices: (B,) int32 image of each box.
        output_size: (h, w) static size of the crops.
        wrap: Treat each image as one period of a periodic image: boxes may cross its edges
            and read the opposite side. Otherwise boxes must lie inside the image.

    Returns:
        (B, h, w, C) crops.
    """

    @tf.custom_gradient
    def crop(images):
        def gradient(upstream):
            shape = tuple(images.shape)
            return _compiled_crops_adjoint(shape, boxes, box_indices, output_size, wrap, upstream)

        return _compiled_crops(images, boxes, box_indices, output_size, wrap), gradient

    return crop(images)


def _crop_boxes(item_seeds, step, nb_crops, crop_range, crop_extent, wrap):
    """Normalised boxes (N * K, 4) as (top, left, bottom, right), K per item.

    Each crop's scale is uniform in `crop_range`; its height and width are that scale times
    `crop_extent` (the largest box with the model's aspect ratio, in image fractions). Its
    position is uniform over the whole periodic image with `wrap` (every pixel is then covered
    equally often), else uniform with the box inside the image (the border is covered less).
    """
    draws = _per_item(
        item_seeds,
        lambda seed: tf.random.stateless_uniform(
            (nb_crops, 3), seed=_stream(seed, step, _BOXES), alg=_ALGORITHM
        ),
    )
    scale = crop_range[0] + (crop_range[1] - crop_range[0]) * draws[:, 0]
    height = scale * crop_extent[0]
    width = scale * crop_extent[1]
    top = draws[:, 1] if wrap else draws[:, 1] * (1.0 - height)
    left = draws[:, 2] if wrap else draws[:, 2] * (1.0 - width)
    return tf.stack([top, left, top + height, left + width], axis=1)


def blur_factors(image_shape: tuple[int, int], output_size: tuple[int, int]) -> tuple[float, ...]:
    """The blurred copies this image and model size need: factors up to the largest shrink.

    The largest box (crop scale 1) spans the largest rectangle of the model's aspect ratio that
    fits the image, so it is shrunk by min(H / h, W / w).
    """
    largest = min(image_shape[0] / output_size[0], image_shape[1] / output_size[1])
    return tuple(factor for factor in _BLUR_FACTORS if factor <= largest)


def glance_count(nb_crops: int, glance: float) -> int:
    """How many of an image's `nb_crops` crops are glances: the share rounded half up."""
    return int(glance * nb_crops + 0.5)


def _glance_factor(image_shape: tuple[int, int], output_size: tuple[int, int]) -> float:
    """The shrink of a glance: the largest box's (see `blur_factors`) over `GLANCE_SCALE`."""
    largest = min(image_shape[0] / output_size[0], image_shape[1] / output_size[1])
    return largest / GLANCE_SCALE


def _triangle(factor: float, channels: int) -> tf.Tensor:
    """A normalised triangle of half-width `factor` pixels, as a depthwise kernel (k, 1, C, 1)."""
    reach = int(factor - 1e-6)
    weights = [1.0 - abs(k) / factor for k in range(-reach, reach + 1)]
    kernel = tf.constant(weights, tf.float32) / sum(weights)
    return tf.tile(kernel[:, None, None, None], (1, 1, channels, 1))


def _blurred(images: tf.Tensor, factor: float, wrap: bool) -> tf.Tensor:
    """Separable triangle blur; borders wrap around (periodic images) or are mirrored."""
    channels = images.shape[-1]
    kernel = _triangle(factor, channels)
    reach = (kernel.shape[0] - 1) // 2
    if wrap:
        padded = tf.concat([images[:, -reach:], images, images[:, :reach]], axis=1) if reach else images
        padded = tf.concat([padded[:, :, -reach:], padded, padded[:, :, :reach]], axis=2) if reach else padded
    else:
        padded = tf.pad(images, [[0, 0], [reach, reach], [reach, reach], [0, 0]], mode="REFLECT")
    strides = [1, 1, 1, 1]
    rows = tf.nn.depthwise_conv2d(padded, kernel, strides, "VALID")
    return tf.nn.depthwise_conv2d(rows, tf.transpose(kernel, (1, 0, 2, 3)), strides, "VALID")


@tf.function(jit_compile=True)
def _compiled_noise(item_seeds, step, shape):
    """Uniform noise of unit standard deviation, (N * K, h, w, C), drawn per item."""
    half_width = 3.0**0.5
    return _per_item(
        item_seeds,
        lambda seed: tf.random.stateless_uniform(
            shape, seed=_stream(seed, step, _NOISE), minval=-half_width, maxval=half_width, alg=_ALGORITHM
        ),
    )


@tf.function(jit_compile=True)
def _compiled_boxes(item_seeds, step, nb_crops, crop_range, crop_extent, wrap):
    return _crop_boxes(item_seeds, step, nb_crops, crop_range, crop_extent, wrap)


class Crops(NamedTuple):
    """What the K random crops of each of N images sample, before sampling them.

    Attributes:
        sources: The images and their blurred copies (N * (1 + F), H, W, C), then with glances
            the glances' copies (N more).
        boxes: (N * K, 4) boxes (top, left, bottom, right) as fractions of the image size; rows
            i * K to i * K + K - 1 belong to image i.
        box_indices: (N * K,) the source of each box.
        noise: (N * K, h, w, C) the noise to add to the crops.
    """

    sources: tf.Tensor
    boxes: tf.Tensor
    box_indices: tf.Tensor
    noise: tf.Tensor


@dataclass(frozen=True)
class CropPlan:
    """How the K crops of each image are cut and resized: everything about them that shapes the
    compiled graph. The ranges, the extent and the noise's size enter `draw` as tensors.

    Attributes:
        nb_crops: K, crops per image.
        output_size: (h, w) the model's input size.
        wrap: Boxes may cross the image edges and read the opposite side (periodic images).
        antialias: Boxes shrunk by 1.5 or more sample a blurred copy of the image.
        glances: The first `glances` crops of each image are glances (see the module docstring).
    """

    nb_crops: int
    output_size: tuple[int, int]
    wrap: bool = False
    antialias: bool = False
    glances: int = 0

    def draw(self, images, item_seeds, step, crop_range, crop_extent, noise_std) -> Crops:
        """This step's crops of `images` (N, H, W, C), from each item's seed (N, 2) and the step.

        Args:
            crop_range: (2,) smallest and largest crop scale, as fractions of `crop_extent`.
            crop_extent: (2,) the largest crop's height and width as fractions of the image's.
            noise_std: Scalar standard deviation of the added noise, in pixel units.
        """
        batch_size, height, _, channels = images.shape
        nb_crops, output_size = self.nb_crops, self.output_size
        boxes = _compiled_boxes(item_seeds, step, nb_crops, crop_range, crop_extent, self.wrap)
        box_indices = tf.repeat(tf.range(batch_size, dtype=tf.int32), nb_crops)
        sources = images
        factors = blur_factors(images.shape[1:3], output_size) if self.antialias else ()
        if factors:
            # Item i's copies sit at rows i * (1 + F) .. of the stack; a box picks the copy blurred
            # by the largest factor not above its own shrink.
            copies = tf.stack([images, *(_blurred(images, factor, self.wrap) for factor in factors)], axis=1)
            sources = tf.reshape(copies, (-1, *images.shape[1:]))
            shrink = (boxes[:, 2] - boxes[:, 0]) * height / output_size[0]
            level = tf.reduce_sum(tf.cast(shrink[:, None] >= tf.constant(factors)[None], tf.int32), axis=1)
            box_indices = box_indices * (1 + len(factors)) + level
        if self.glances:
            sources, boxes, box_indices = self._with_glances(images, sources, boxes, box_indices, crop_extent)
        noise = noise_std * _compiled_noise(item_seeds, step, (nb_crops, *output_size, channels))
        return Crops(sources, boxes, box_indices, noise)

    def _with_glances(self, images, sources, boxes, box_indices, crop_extent):
        """Crops 0 .. glances - 1 of each image turned into glances: the largest box, at the drawn
        position with `wrap` (every shift alike) or centred, sampling a blurred copy of the image
        appended after `sources` (the image itself if the glance hardly shrinks it)."""
        batch_size, nb_crops = images.shape[0], self.nb_crops
        factor = _glance_factor(images.shape[1:3], self.output_size)
        crop_index = tf.range(batch_size * nb_crops) % nb_crops
        is_glance = crop_index < self.glances
        if self.wrap:
            top, left = boxes[:, 0], boxes[:, 1]
        else:
            top = tf.fill([boxes.shape[0]], (1.0 - crop_extent[0]) / 2.0)
            left = tf.fill([boxes.shape[0]], (1.0 - crop_extent[1]) / 2.0)
        whole = tf.stack([top, left, top + crop_extent[0], left + crop_extent[1]], axis=1)
        boxes = tf.where(is_glance[:, None], whole, boxes)
        item = tf.range(batch_size * nb_crops, dtype=tf.int32) // nb_crops
        if factor >= _BLUR_FACTORS[0]:
            glance_index = sources.shape[0] + item
            sources = tf.concat([sources, _blurred(images, factor, self.wrap)], axis=0)
        else:
            glance_index = item * (sources.shape[0] // batch_size)  # the image itself
        return sources, boxes, tf.where(is_glance, glance_index, box_indices)
