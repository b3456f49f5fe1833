"""The 1000 ImageNet-1k class names, with a lookup from name to index."""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources

__all__ = ["ClassNames", "imagenet_classes"]


class ClassNames(tuple):
    """Class names by index; `index(name)` finds a class, suggesting close names on a miss.

    Example:
    >>> classes = imagenet_classes()
    >>> classes.index("espresso"), classes[967]
    (967, 'espresso')
    """

    def index(self, name: str, *args) -> int:  # type: ignore[override]
        try:
            return super().index(name, *args)
        except ValueError:
            lowered = {candidate.lower(): position for position, candidate in enumerate(self)}
            if name.lower() in lowered:
                return lowered[name.lower()]
            close = difflib.get_close_matches(name, list(self), n=5, cutoff=0.5)
            hint = f" Close names: {', '.join(repr(c) for c in close)}." if close else ""
            raise ValueError(f"No class named {name!r} among the {len(self)} classes.{hint}") from None

    def indices(self, names) -> list[int]:
        """Indices of several names, in order."""
        return [self.index(name) for name in names]


@lru_cache(maxsize=1)
def imagenet_classes() -> ClassNames:
    """The ImageNet-1k class names, index i being logit i of the zoo classifiers.

    Curated readable names from the `imagenet-classes` package (MIT), shipped in
    `xplique_maco/data` (see PROVENANCE.md). Two names occur twice ('missile' for classes 657
    and 744, 'sunglasses' for 836 and 837); `index` returns the first.
    """
    text = resources.files("xplique_maco.data").joinpath("imagenet1k_clean_names.json").read_text("utf-8")
    names = json.loads(text)
    if len(names) != 1000:
        raise ValueError(f"The shipped class-name file has {len(names)} names, expected 1000.")
    return ClassNames(names)
