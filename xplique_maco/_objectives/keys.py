"""What each image of an objective renders, as a number: the key of its random stream.

An image's key depends on the arguments of its own row in every term of the objective (a
unit's index, a direction's vector, an inversion's target, the coefficients) and on how many
images before it in the batch have the same row (the k-th image of a unit in a `Diversity`
group, a unit asked for twice). It does not depend on the image's position, the batch size, the
other units, the chunks or the shards, nor on where the layer sits (a model nested in another
gives the same keys). So a unit renders the same image alone or anywhere in any batch, and a
render cut into shards or resumed gives the same images.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .objective import Objective

# Keys are non-negative int64 (the second word of a stateless random seed).
_KEY_MASK = (1 << 63) - 1


def item_keys(objective: Objective) -> np.ndarray:
    """(batch size,) int64: the key of each image of `objective` (see the module docstring)."""
    terms = [(term.batched, term.tensors(objective.batch_size, None)) for term in objective.terms]
    seen: dict[bytes, int] = {}
    keys = np.empty(objective.batch_size, np.int64)
    for row in range(objective.batch_size):
        digest = hashlib.blake2b(digest_size=8)
        for batched, arguments in terms:
            for name in sorted(arguments):
                value = np.asarray(arguments[name], np.float64)
                value = value[row] if name in batched else value
                digest.update(name.encode() + repr(value.shape).encode() + value.tobytes())
        what = digest.digest()
        repeat = seen.get(what, 0)
        seen[what] = repeat + 1
        digest.update(repeat.to_bytes(8, "little"))
        keys[row] = int.from_bytes(digest.digest(), "little") & _KEY_MASK
    return keys
