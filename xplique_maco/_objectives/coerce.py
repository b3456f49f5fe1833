"""The one coercion of what a user passes as an objective: ours, or an Xplique one read into ours."""

from __future__ import annotations

import keras

from .objective import Objective
from .xplique import from_xplique, is_xplique


def objective_from(value) -> Objective:
    """`value` as our `Objective`: itself, or an Xplique feature-visualisation objective read into
    ours (checked); anything else is a TypeError naming what is accepted."""
    if is_xplique(value) and not isinstance(value, Objective):
        value = from_xplique(value)
    if isinstance(value, keras.Model):
        raise TypeError(
            f"`objective` must be an Objective, received the model {value.name!r} itself. Say what "
            "to maximise in it: maco(Neuron(model, layer, index)), for example Neuron(model, -1, "
            "class_index) for a class logit, or Channel(model, layer, channel)."
        )
    if not isinstance(value, Objective):
        raise TypeError(
            "`objective` must be an Objective (Neuron, Channel, Layer, Direction, Inversion, Custom, "
            "Diversity or a combination, or an xplique.features_visualizations.Objective), received "
            f"{type(value).__name__}."
        )
    return value
