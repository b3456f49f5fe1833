"""Pure-function optimizers for the phase: state in, state out, so one compiled step serves every call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import tensorflow as tf

from .._config import checks


class Optimizer(Protocol):
    """A pure-function optimizer: its state is a value, so one compiled step serves every call.

    It minimises: the step passes it the negated gradient of the objective.
    """

    def init(self, params: tf.Tensor) -> tuple:
        """The state before the first step, for parameters like `params`."""
        ...

    def apply(self, params: tf.Tensor, grads: tf.Tensor, state: tuple, learning_rate, step) -> tuple:
        """`(params, state)` after one step of size `learning_rate` at step index `step`."""
        ...


@dataclass(frozen=True)
class SGD:
    """Gradient descent with optional heavy-ball momentum.

    Args:
        momentum: Momentum coefficient in [0, 1).
    """

    momentum: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "momentum", checks.fraction("SGD", "momentum", self.momentum))

    def init(self, params: tf.Tensor) -> tuple:
        return (tf.zeros_like(params),)

    def apply(self, params, grads, state, learning_rate, step):
        (velocity,) = state
        velocity = self.momentum * velocity + grads
        return params - learning_rate * velocity, (velocity,)


@dataclass(frozen=True)
class _Moments:
    """The settings shared by Adam and Nadam, checked when made."""

    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7

    def __post_init__(self):
        owner = type(self).__name__
        for name in ("beta_1", "beta_2"):
            object.__setattr__(self, name, checks.fraction(owner, name, getattr(self, name)))
        object.__setattr__(self, "epsilon", checks.small_positive(owner, "epsilon", self.epsilon))


@dataclass(frozen=True)
class Adam(_Moments):
    """Adam (Kingma & Ba, 2015) with bias correction.

    Args:
        beta_1: Decay of the first moment.
        beta_2: Decay of the second moment.
        epsilon: Added to the denominator for numerical stability.
    """

    def init(self, params: tf.Tensor) -> tuple:
        return (tf.zeros_like(params), tf.zeros_like(params))

    def apply(self, params, grads, state, learning_rate, step):
        first, second = state
        t = tf.cast(step + 1, params.dtype)
        first = self.beta_1 * first + (1.0 - self.beta_1) * grads
        second = self.beta_2 * second + (1.0 - self.beta_2) * tf.square(grads)
        first_hat = first / (1.0 - self.beta_1**t)
        second_hat = second / (1.0 - self.beta_2**t)
        update = first_hat / (tf.sqrt(second_hat) + self.epsilon)
        return params - learning_rate * update, (first, second)


@dataclass(frozen=True)
class Nadam(_Moments):
    """Adam with Nesterov momentum (Dozat, 2016), with the 0.96^(0.004 t) momentum schedule.

    Args:
        beta_1: Base decay of the first moment.
        beta_2: Decay of the second moment.
        epsilon: Added to the denominator for numerical stability.
    """

    def init(self, params: tf.Tensor) -> tuple:
        # The running product of momentum coefficients is part of the state.
        return (tf.zeros_like(params), tf.zeros_like(params), tf.ones((), params.dtype))

    def _momentum(self, t):
        return self.beta_1 * (1.0 - 0.5 * tf.pow(0.96, 0.004 * t))

    def apply(self, params, grads, state, learning_rate, step):
        first, second, momentum_product = state
        t = tf.cast(step + 1, params.dtype)
        momentum_now = self._momentum(t)
        momentum_next = self._momentum(t + 1.0)
        product_now = momentum_product * momentum_now
        product_next = product_now * momentum_next
        first = self.beta_1 * first + (1.0 - self.beta_1) * grads
        second = self.beta_2 * second + (1.0 - self.beta_2) * tf.square(grads)
        first_hat = momentum_next * first / (1.0 - product_next) + (1.0 - momentum_now) * grads / (
            1.0 - product_now
        )
        second_hat = second / (1.0 - self.beta_2**t)
        update = first_hat / (tf.sqrt(second_hat) + self.epsilon)
        return params - learning_rate * update, (first, second, product_now)


_BY_NAME = {"sgd": SGD, "adam": Adam, "nadam": Nadam}


def get_optimizer(optimizer: str | SGD | Adam | Nadam) -> Optimizer:
    """Returns the optimizer named by `optimizer` (one of "sgd", "adam", "nadam") or `optimizer` itself.

    Args:
        optimizer: A name or an instance of `SGD`, `Adam` or `Nadam`.

    Returns:
        An optimizer instance.

    Example:
    >>> get_optimizer("nadam")
    Nadam(beta_1=0.9, beta_2=0.999, epsilon=1e-07)
    """
    if isinstance(optimizer, (SGD, Adam, Nadam)):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        return _BY_NAME[optimizer.lower()]()
    raise ValueError(
        f"Unknown optimizer {optimizer!r}. Accepted: one of {sorted(_BY_NAME)} or an instance of "
        "xplique_maco.SGD, Adam or Nadam (Keras optimizers keep hidden state and "
        "cannot be reused across compiled calls)."
    )
