"""The Objective value: weighted terms, their algebra, their value inside the compiled step, and
`Kind`, what a kind of objective defines (so that adding one, or a user's own, touches one module)."""

from __future__ import annotations

import numbers
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import ClassVar, Protocol, runtime_checkable

import keras
import numpy as np
import tensorflow as tf

from .paths import position_tied
from .taps import Tap

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


@dataclass(frozen=True)
class Term:
    """One weighted reading of one or more layers, by one kind of objective.

    `kind`, the taps and `static` shape the compiled graph; `arguments` (targets, directions,
    references) and the coefficient enter it as tensors, so changing them does not retrace.

    Attributes:
        kind: How the term reads its layers (`Kind`): the objective class that made it.
        taps: The layer calls it reads.
        arguments: Name -> array.
        batched: The names of the arguments that lead with the batch axis (`kind.batched`).
        text: How it reads in a `repr`.
        coefficient: Its weight in the sum.
        static: Anything else that shapes the graph (a custom objective's function).
        group: How many consecutive images the term couples (a `Diversity` compares each image
            with the others of its group); 1 for terms that read each image on its own. The
            driver never splits a group across chunks, passes of items or replicas.
    """

    kind: Kind
    taps: tuple[Tap, ...]
    arguments: dict
    batched: tuple[str, ...]
    text: str
    coefficient: float = 1.0
    static: Hashable = None
    group: int = 1

    @property
    def batch_size(self) -> int:
        """Rows of its batched arguments (1 when it has none): the items it reads, before groups."""
        return max((len(self.arguments[name]) for name in self.batched), default=1)

    @property
    def signature(self) -> tuple:
        return (
            self.kind,
            tuple(tap.key for tap in self.taps),
            tuple(len(t.shape) for t in self.taps),
            self.static,
        )

    def tensors(self, batch_size: int, items: np.ndarray | None) -> dict[str, np.ndarray]:
        """The arguments broadcast to `batch_size` (then restricted to `items`), with the coefficient.

        Each row is repeated for the images it stands for: all of them for a single row, the K
        consecutive images of its group when the objective asks for K images of each item.
        """
        arguments = dict(self.arguments)
        for name in self.batched:
            values = arguments[name]
            if len(values) != batch_size:
                values = np.repeat(values, batch_size // len(values), axis=0)
            arguments[name] = values if items is None else values[items]
        arguments["coefficient"] = np.float32(self.coefficient)
        return arguments


class Objective:
    """A weighted sum of terms reading layers of one model; each batch item gives one image.

    Build objectives with `Neuron`, `Channel`, `Layer`, `Direction`, `Inversion` or `Custom`,
    and combine them with `+`, `-`, unary `-`, and multiplication or division by a scalar. A
    batch of size 1 broadcasts against a batch of size N. Subtracting a `Diversity` of K
    images asks for K images of each item, compared with each other.

    Each kind is a subclass that says how its terms read their layers (the `Kind` protocol):
    `reduce` (inside the compiled step), `batched` (which arguments lead with the batch axis),
    `check` (against the layer shapes at the crop size, before any optimisation) and `layout`
    (whether it needs one fixed layout of the image). The defaults below fit a kind that
    checks nothing and needs no layout.

    Example:
    >>> objective = Channel(model, "conv2", 3) + 0.5 * Layer(model, "conv1")
    >>> objective
    Channel(conv2, 3) + 0.5 * Layer(conv1)
    """

    batched: ClassVar[tuple[str, ...]] = ()

    def __init__(self, model: keras.Model, terms: tuple[Term, ...]):
        self.model = model
        self.terms = tuple(terms)

    # ---- what each kind defines for its own terms (`Kind`) ----

    @staticmethod
    def reduce(activations: list[tf.Tensor], arguments: dict, static) -> tf.Tensor:
        """The term's value (N, K) from its layers' activations, each (N, K, ...): K crops per item."""
        raise NotImplementedError

    @classmethod
    def check(cls, term: Term, shapes: list[tuple], input_size: tuple[int, int]) -> None:
        """Raises a clear error if the term cannot read layers of these shapes (crops of `input_size`)."""

    @classmethod
    def layout(cls, term: Term) -> str | None:
        """Why the term needs one fixed layout of the image, or None."""
        return None

    # ---- the objective as a whole ----

    @property
    def batch_size(self) -> int:
        """Number of images this objective asks for: `group` images of each item."""
        return self.group * max(term.batch_size for term in self.terms)

    @property
    def group(self) -> int:
        """How many consecutive images are optimised together (K of a `Diversity`), else 1.

        Images 0 .. K - 1 form the first group, K .. 2K - 1 the second, and so on; a group is
        never split across chunks, `items`, or replicas.
        """
        return max(term.group for term in self.terms)

    @property
    def taps(self) -> tuple[Tap, ...]:
        """The distinct layer calls the objective reads, in order of first use."""
        return tuple({tap.key: tap for term in self.terms for tap in term.taps}.values())

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The distinct layers the objective reads, in order of first use (paths for nested ones)."""
        return tuple(tap.key for tap in self.taps)

    @property
    def fixed_layout(self) -> str | None:
        """Why this objective needs one fixed layout of the image, or None if it does not.

        An `Inversion` compares positions with a reference; a `Neuron` of a convolutional or
        token layer reads one position; a layer read after a Flatten (a Flatten -> Dense head)
        weighs every position of the image with its own weights. Crops that wrap around the
        periodic image would average such an objective over every shift of the image (a
        `Neuron` would become a weak `Channel`), so `maco` keeps the crops inside the image
        for them.
        """
        for term in self.terms:
            reason = term.kind.layout(term)
            if reason is not None:
                return reason
            for tap in term.taps:
                tied = position_tied(tap)
                if tied is not None:
                    return f"{term.text} reads positions through {tied!r}"
        return None

    @property
    def signature(self) -> tuple:
        """What shapes the compiled graph: kinds and layers of the terms, not their targets."""
        return tuple(term.signature for term in self.terms)

    def arguments(self, items: np.ndarray | None = None) -> list[dict[str, np.ndarray]]:
        """Per-term tensors (targets and coefficients), broadcast to the batch size.

        Args:
            items: Optional batch positions to keep (in this order, repeats allowed).
        """
        return [term.tensors(self.batch_size, items) for term in self.terms]

    def validate(self, shapes: dict[str, tuple], input_size: tuple[int, int]) -> None:
        """Lets every term check its layers' shapes (tap key -> shape) for crops of `input_size`."""
        for term in self.terms:
            term.kind.check(term, [shapes[tap.key] for tap in term.taps], input_size)

    # ---- algebra ----

    def __add__(self, other: Objective) -> Objective:
        if isinstance(other, numbers.Number) and other == 0:
            return self  # lets sum() start from 0
        if not isinstance(other, Objective):
            raise TypeError(
                f"Objectives add to objectives only (or to 0, for sum()), received {type(other).__name__}."
            )
        if other.model is not self.model:
            raise ValueError(
                "Cannot combine objectives built on different models "
                f"({self.model.name!r} and {other.model.name!r}); all terms of an objective "
                "must read the same model."
            )
        left, right = (max(t.batch_size for t in o.terms) for o in (self, other))
        if len({left, right} - {1}) > 1:
            raise ValueError(
                f"Cannot combine objectives with batch sizes {left} and {right}: sizes must be "
                f"equal, or one of them 1 (it is broadcast). Left: {self!r}. Right: {other!r}."
            )
        if len({self.group, other.group} - {1}) > 1:
            raise ValueError(
                f"Cannot combine objectives that ask for {self.group} and {other.group} images of "
                "each item (two Diversity terms with different `images`): use one number of images. "
                f"Left: {self!r}. Right: {other!r}."
            )
        return Objective(self.model, self.terms + other.terms)

    __radd__ = __add__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            raise TypeError(f"Objectives subtract objectives only, received {type(other).__name__}.")
        return self + (-other)

    def __mul__(self, factor: float) -> Objective:
        if not isinstance(factor, numbers.Real) or isinstance(factor, bool):
            if isinstance(factor, Objective):
                raise TypeError("Objectives can be multiplied by a scalar only, not by another objective.")
            raise TypeError(
                f"Objectives can be multiplied by a real number only, received {type(factor).__name__}."
            )
        if not np.isfinite(factor):
            raise ValueError(f"Cannot multiply an objective by {factor}: the factor must be finite.")
        terms = tuple(replace(t, coefficient=t.coefficient * float(factor)) for t in self.terms)
        return Objective(self.model, terms)

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> Objective:
        if not isinstance(divisor, numbers.Real) or isinstance(divisor, bool):
            raise TypeError(
                f"Objectives can be divided by a real number only, received {type(divisor).__name__}."
            )
        if divisor == 0:
            raise ZeroDivisionError("Cannot divide an objective by zero.")
        return self * (1.0 / float(divisor))

    def __repr__(self) -> str:
        parts = []
        for position, term in enumerate(self.terms):
            size = abs(term.coefficient)
            scaled = term.text if size == 1 else f"{size:g} * {term.text}"
            if position == 0:
                parts.append(("-" if term.coefficient < 0 else "") + scaled)
            else:
                parts.append(f" {'-' if term.coefficient < 0 else '+'} {scaled}")
        return "".join(parts)


def term_values(signature: tuple, activations: dict, arguments: list, batch_size: int) -> tf.Tensor:
    """Objective values (N, K) for activations of N * K inputs, K consecutive ones per item.

    Args:
        signature: `Objective.signature`.
        activations: Tap key -> activation tensor with N * K leading rows.
        arguments: `Objective.arguments()` as tensors.
        batch_size: N (whole groups of the objective's `group` consecutive items).
    """
    total = 0.0
    for (kind, keys, _ranks, static), term_arguments in zip(signature, arguments, strict=True):
        per_item = []
        for key in keys:
            activation = tf.cast(activations[key], tf.float32)
            per_item.append(
                tf.reshape(activation, tf.concat([[batch_size, -1], tf.shape(activation)[1:]], 0))
            )
        total = total + term_arguments["coefficient"] * kind.reduce(per_item, term_arguments, static)
    return total
