"""`Task`: what every chunk of one run shares (the objective, its feature model, the plan, the source)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .._objectives.inputs import ModelInputs
from .._objectives.objective import Objective
from .parametrization import Parametrization
from .plan import Plan


@dataclass(frozen=True)
class Task:
    """What every chunk of one run shares.

    Attributes:
        objective: What to maximise.
        extractor: The keras.Model over the objective's taps (`_objectives.extractor.feature_model`).
        plan: The run's settings, decided.
        parametrization: What the optimiser moves and how it becomes an image.
        source: What the parametrisation renders from, at `plan.image_shape` (a magnitude, the
            Fourier baseline's scale, or the photos' seeds).
        item_seeds: (batch size, 2) int64: the random stream of each batch position.
        strategy: Runs each chunk's items split across its replicas.
        inputs: The model's image input and what its other inputs are fixed to.
    """

    objective: Objective
    extractor: keras.Model
    plan: Plan
    parametrization: Parametrization
    source: object
    item_seeds: np.ndarray
    strategy: tf.distribute.Strategy
    inputs: ModelInputs

    def arguments(self, items: np.ndarray) -> tuple:
        """What the step reads per item besides the image, as tensors: the objective's arguments
        and the rows of the model's other inputs, for these batch positions."""
        return tf.nest.map_structure(
            tf.convert_to_tensor, (self.objective.arguments(items), self.inputs.rows(items))
        )
