"""`Kind`: what a kind of objective defines, so that adding one (or a user's own) touches one module."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import tensorflow as tf

    from .objective import Term

# Added to norms that divide, so that an all-zero activation gives 0, not NaN.
EPSILON = 1e-6


@runtime_checkable
class Kind(Protocol):
    """How the terms of one kind of objective read their layers.

    A kind is the `Objective` subclass that builds its terms (`Neuron`, `Direction`,
    `Diversity`, ...): its constructor finds the taps and checks the arguments, and these four
    members, read from the class, say the rest. `Objective` gives defaults for all but `reduce`.

    Attributes:
        batched: The names of the arguments that lead with the batch axis (one row per item).
    """

    batched: ClassVar[tuple[str, ...]]

    @staticmethod
    def reduce(activations: list[tf.Tensor], arguments: dict, static) -> tf.Tensor:
        """The term's value (N, K) from its layers' activations, each (N, K, ...): K crops per
        item. Runs inside the compiled step; `arguments` are tensors, `static` the term's own."""
        ...

    @classmethod
    def check(cls, term: Term, shapes: list[tuple], input_size: tuple[int, int]) -> None:
        """Raises a clear error if the term cannot read layers of these shapes (crops of
        `input_size`), before any optimisation."""
        ...

    @classmethod
    def layout(cls, term: Term) -> str | None:
        """Why the term needs one fixed layout of the image (crops then stay inside it), or None."""
        ...
