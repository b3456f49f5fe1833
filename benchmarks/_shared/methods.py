"""The three methods side by side: ours (`maco`, without and with glances), Xplique's MACO and the
Fourier baseline, each rendering ImageNet classes of a model."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from xplique_maco import Neuron, fourier, maco

from .internals import MACO

METHODS = ("ours", "xplique", "fourier")
# "ours" renders without glances: its cached parts were rendered before glances became maco's
# default; "ours_glance" renders with the default share.
NAMES = {"ours": "ours, no glances", "ours_glance": f"ours (defaults: glance {MACO.glance:g})"}
# Peak memory: ours at its defaults and in one model pass of all crops, Xplique, and the process
# with the model loaded and nothing rendered.
MEMORY_METHODS = ("ours", "ours_one_pass", "xplique", "bare")

_FIXED: dict[int, keras.Model] = {}


def fixed_size(model: keras.Model) -> keras.Model:
    """Xplique needs a static input size; the zoo models accept any: wrap them at 224 x 224."""
    if model.inputs[0].shape[1] is not None:
        return model
    if id(model) not in _FIXED:
        fixed = keras.models.clone_model(model, input_tensors=keras.Input((224, 224, 3)))
        fixed.set_weights(model.get_weights())
        _FIXED[id(model)] = fixed
    return _FIXED[id(model)]


def xplique_render(model, index: int, steps: int, crops: int, size: int, seed: int):
    """Xplique 2.0.2's maco on one class (it takes one objective per call); (image, transparency)."""
    # Imported here: Xplique is installed only beside the bench environment's package.
    from xplique.features_visualizations import Objective
    from xplique.features_visualizations import maco as xplique_maco

    tf.random.set_seed(seed)
    objective = Objective.neuron(fixed_size(model), -1, index)
    image, transparency = xplique_maco(
        objective, nb_steps=steps, nb_crops=crops, values_range=(0, 1), custom_shape=(size, size)
    )
    return np.asarray(image), np.asarray(transparency)


def render_classes(method: str, model, classes, seed: int, steps: int, crops: int, size: int) -> np.ndarray:
    """Images (len(classes), size, size, 3) in [0, 1] of one seed: one batched call for ours and
    the Fourier baseline, one call per class for Xplique. Any other method name renders as ours."""
    if method == "xplique":
        return np.stack([xplique_render(model, index, steps, crops, size, seed)[0] for index in classes])
    render = fourier if method == "fourier" else maco
    glance = MACO.glance if method == "ours_glance" else 0.0
    settings = dict(nb_steps=steps, image_shape=(size, size), nb_crops=crops, verbose=0)
    return render(Neuron(model, -1, classes), seed=seed, glance=glance, **settings)[0].numpy()
