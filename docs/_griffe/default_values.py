"""Griffe extension for the docs build: signatures show the values of the library's defaults.

The public signatures read their defaults from `xplique_maco/_config/defaults.py`
(`nb_steps: int = MACO.nb_steps`). Griffe reads the sources without running them, so the API
reference would show those names. This replaces each default that reads the defaults module by
its value, written as a Python literal (`nb_steps: int = 128`). The source files are not changed.

The defaults module imports no TensorFlow. It is loaded from the checkout being documented, by
its path: the docs build does not install the package, and an installed copy may be another
checkout's.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import griffe

_MODULE = "xplique_maco._config.defaults"
_FILE = Path(__file__).resolve().parents[2] / "xplique_maco" / "_config" / "defaults.py"


def _load_defaults() -> ModuleType:
    name = "_documented_defaults"  # not the package's name: an installed copy stays untouched
    spec = importlib.util.spec_from_file_location(name, _FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def literal(value: object) -> str | None:
    """`value` as a Python literal that reads back equal, or None if it has none (an object)."""
    text = repr(value)
    try:
        return text if ast.literal_eval(text) == value else None
    except (ValueError, SyntaxError):
        return None


class DefaultValues(griffe.Extension):
    """Replaces defaults such as `MACO.nb_steps` or `CLOSENESS` by their values in every signature."""

    def __init__(self) -> None:
        super().__init__()
        self.defaults = _load_defaults()

    def value_of(self, default: object) -> str | None:
        """The literal of a default that names an object of the defaults module, else None."""
        if not isinstance(default, (griffe.ExprName, griffe.ExprAttribute)):
            return None
        path = default.canonical_path
        if not path.startswith(_MODULE + "."):
            return None
        value = self.defaults
        for name in path[len(_MODULE) + 1 :].split("."):
            value = getattr(value, name)
        return literal(value)

    def on_function_instance(self, *, func: griffe.Function, **kwargs) -> None:
        for parameter in func.parameters:
            text = self.value_of(parameter.default)
            if text is not None:
                parameter.default = text
