"""`Task`: what every chunk of one run shares (the objective, its feature model, the plan, the source)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

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
    """

    objective: Objective
    extractor: keras.Model
    plan: Plan
    parametrization: Parametrization
    source: object
    item_seeds: np.ndarray
    strategy: tf.distribute.Strategy
