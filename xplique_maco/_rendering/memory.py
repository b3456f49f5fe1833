"""How much fits in a device's memory: chunk and pass sizes from its free memory and this model's
cost per crop, and the smaller sizes to retry with when a device runs out of memory anyway.

The rule, on GPUs and TPUs:

    budget   = MEMORY_FRACTION x (the device's memory - what is in use already, e.g. the weights)
    per crop = the model's cost per crop: the allocator's peak over one probe pass (forward and
               backward at the crop size) where the device keeps statistics (GPUs), or the bytes
               of the probe's forward tensors per crop, from its traced graph (an upper bound:
               it ignores fused and freed tensors) where it does not
    per item = IMAGE_COPIES image-sized float32 arrays (phase, optimizer moments, image, its
               gradient, the Fourier transforms and their gradients, the transparency, the
               crops' blurred sources and the temporaries of all these; measured on the CPU),
               GLANCE_COPIES more with glances (their blurred copy and its gradient)
    images per device = budget // (per item + nb_crops x per crop), one model pass each step;
    if not even one image's crops fit: one image per device, passes of
               (budget - per item) // per crop crops.

A device whose memory is unknown keeps one chunk of everything; `smaller` then halves the sizes
when it runs out. CPUs keep the cache-driven sizes of `plan`.
"""

from __future__ import annotations

import functools
import weakref
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from .._objectives.extractor import features

MEMORY_FRACTION = 0.8
# Image-sized float32 arrays per image on the image side of a step, and more with glances: the
# measurement behind these is `python -m benchmarks.memory_rule` (the documentation's Scale page).
IMAGE_COPIES = 32
GLANCE_COPIES = 4
_PROBE_CROPS = 2
_COSTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Sizes(NamedTuple):
    """How a run is cut: images per chunk (over all replicas) and crops per model pass per
    device (None: all the crops of a chunk's images in one pass)."""

    batch_size: int
    crops_per_pass: int | None


def accelerator() -> str | None:
    """The first GPU or TPU, as a device name, or None on a CPU-only machine."""
    for kind in ("GPU", "TPU"):
        devices = tf.config.list_logical_devices(kind)
        if devices:
            return devices[0].name
    return None


@functools.cache
def device_memory(device: str) -> int | None:
    """Bytes the device may hold: its allocator's limit (a configured logical-device limit
    included), or None when the runtime does not tell. Read once per device and process."""
    from tensorflow.python.client import device_lib  # the one place TensorFlow reports it

    wanted = tf.DeviceSpec.from_string(device)
    for attributes in device_lib.list_local_devices():
        spec = tf.DeviceSpec.from_string(attributes.name)
        if spec.device_type == wanted.device_type and spec.device_index == wanted.device_index:
            return int(attributes.memory_limit) or None
    return None


def memory_in_use(device: str) -> int:
    """Bytes the device's allocator holds now (the weights, ...); 0 where it keeps no statistics."""
    try:
        return int(tf.config.experimental.get_memory_info(device)["current"])
    except (ValueError, tf.errors.OpError):
        return 0


def crop_cost(extractor: keras.Model, input_shape: tuple[int, int, int], device: str, others=()) -> int:
    """Bytes one more crop costs in a model pass (forward and backward) on this device.

    Measured by one probe pass where the device's allocator keeps a peak (GPUs), derived from
    the probe's traced graph otherwise. Kept per model, crop size and device. `others` are the
    (row shape, dtype) of the model's other inputs, which go in with each crop (as zeros).
    """
    per_model = _COSTS.setdefault(extractor, {})
    key = (tuple(input_shape), device, tuple(others))
    if key not in per_model:
        measured = _measured(extractor, input_shape, device, others)
        per_model[key] = measured or _derived(extractor, input_shape, others)
    return per_model[key]


def _probe(extractor: keras.Model, others=()):
    @tf.function
    def probe(crops):
        count = tf.shape(crops)[0]
        rows = [tf.zeros(tf.concat([[count], tf.constant(row, tf.int32)], 0), dtype) for row, dtype in others]
        with tf.GradientTape() as tape:
            tape.watch(crops)
            outputs = features(extractor, crops, rows)
            total = tf.add_n([tf.reduce_sum(tf.cast(output, tf.float32)) for output in outputs])
        return tape.gradient(total, crops)

    return probe


def _measured(extractor: keras.Model, input_shape, device: str, others=()) -> int | None:
    """The allocator's peak over a probe pass of _PROBE_CROPS crops, per crop; None where the
    device keeps no statistics (CPUs)."""
    try:
        tf.config.experimental.reset_memory_stats(device)
        before = tf.config.experimental.get_memory_info(device)["current"]
    except (ValueError, tf.errors.OpError):
        return None
    with tf.device(device):
        crops = tf.random.uniform((_PROBE_CROPS, *input_shape))
        _probe(extractor, others)(crops).numpy()
    peak = tf.config.experimental.get_memory_info(device)["peak"]
    if peak <= before:
        return None
    return int(np.ceil((peak - before) / _PROBE_CROPS))


def _derived(extractor: keras.Model, input_shape, others=()) -> int:
    """Bytes per crop of the forward tensors of the probe's graph traced for any number of crops:
    every tensor whose first dimension is that number, all alive at once (an upper bound)."""
    graph = (
        _probe(extractor, others).get_concrete_function(tf.TensorSpec((None, *input_shape), tf.float32)).graph
    )
    total = 0
    for operation in graph.get_operations():
        if operation.name.startswith("gradient_tape"):
            continue
        for tensor in operation.outputs:
            shape = tensor.shape
            if shape.rank and shape[0] is None and shape[1:].is_fully_defined() and tensor.dtype.size:
                total += shape[1:].num_elements() * tensor.dtype.size
    return max(1, total)


def item_cost(image_shape: tuple[int, int], channels: int, glances: bool = False) -> int:
    """Bytes one image costs on the image side of a step, whatever the model."""
    copies = IMAGE_COPIES + (GLANCE_COPIES if glances else 0)
    return copies * image_shape[0] * image_shape[1] * channels * 4


def fitting(budget: int, per_item: int, per_crop: int, nb_crops: int, count: int, replicas: int) -> Sizes:
    """The largest chunk (at most `count` images) whose step fits `budget` bytes per device, in
    one pass; or, when not even one image's crops fit, one image per device in smaller passes."""
    per_device = budget // (per_item + nb_crops * per_crop)
    if per_device >= 1:
        return Sizes(max(1, min(count, per_device * replicas)), None)
    crops = max(1, (budget - per_item) // per_crop)
    return Sizes(min(count, replicas), int(min(crops, nb_crops)))


def passes_fitting(budget: int, per_item: int, per_crop: int, nb_crops: int, per_device: int) -> int | None:
    """Crops per pass for a given chunk (`per_device` images on each device): None when one pass
    fits, else the largest pass that does, at least one crop of each image."""
    crops = (budget - per_device * per_item) // per_crop
    if crops >= per_device * nb_crops:
        return None
    return int(max(per_device, crops))


def per_device(batch_size: int, replicas: int, group: int = 1) -> int:
    """The most images of a chunk one device holds: replicas get whole groups of `group` images."""
    return -(-(batch_size // group) // replicas) * group


def smaller(sizes: Sizes, nb_crops: int, replicas: int, group: int = 1) -> Sizes | None:
    """The sizes to retry with after running out of memory: half the crops of each image per pass
    while a pass holds more than one of each, then half the images per chunk (one crop each per
    pass), in whole groups of `group` images; None when a pass already holds one crop of each
    image of one group."""
    images = per_device(sizes.batch_size, replicas, group)
    per_image = (
        nb_crops if sizes.crops_per_pass is None else max(1, min(nb_crops, sizes.crops_per_pass // images))
    )
    if per_image > 1:
        return Sizes(sizes.batch_size, (per_image // 2) * images)
    groups = images // group
    if groups > 1:
        images = (groups // 2) * group
        return Sizes(images * replicas, images)
    return None


def budget(device: str) -> int | None:
    """MEMORY_FRACTION of what is free on the device, in bytes; None when its memory is unknown."""
    total = device_memory(device)
    if total is None:
        return None
    return int(MEMORY_FRACTION * max(0, total - memory_in_use(device)))
