"""xplique_maco: MACO feature visualisation (phase-only Fourier optimisation) for Keras 3.

Everything a user needs is importable from here: `from xplique_maco import maco, Neuron`. The
names load on first use (with TensorFlow), so `xplique-maco --help` answers at once; the
public modules `metrics`, `zoo` and `atlas` import as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

# The public names, by the private module that defines them (the block at the end says the same
# to editors and documentation tools, which do not run __getattr__; a test keeps them equal).
_PUBLIC = {
    "_driver": ("maco", "fourier"),
    "_accentuate": ("accentuate",),
    "_objective": ("Objective", "evaluate"),
    "_kinds": ("Neuron", "Channel", "Layer", "Direction", "Inversion", "Custom"),
    "_diversity": ("Diversity",),
    "_spectrum": ("Spectrum", "natural_spectrum", "compute_spectrum", "load_spectrum"),
    "_optimizers": ("SGD", "Adam", "Nadam"),
    "_plots": ("plot_maco", "plot_maco_grid", "save_image", "save_rgba", "to_uint8"),
    "_callbacks": ("Callback", "RunInfo", "StepInfo", "History", "Snapshots", "Recorder", "EarlyStopping"),
    "_xplique": ("from_xplique", "from_craft"),
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}
_MODULES = ("metrics", "zoo", "atlas")

__all__ = [*_HOME, *_MODULES, "__version__"]


def __getattr__(name: str):
    if name in _HOME or name in _MODULES:
        from ._backend import require_tensorflow

        require_tensorflow()
        if name in _MODULES:
            value = importlib.import_module(f".{name}", __name__)
        else:
            value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'xplique_maco' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for editors, type checkers and the API reference, which do not run __getattr__
    # ruff: noqa: F401
    from . import atlas, metrics, zoo
    from ._accentuate import accentuate
    from ._callbacks import Callback, EarlyStopping, History, Recorder, RunInfo, Snapshots, StepInfo
    from ._diversity import Diversity
    from ._driver import fourier, maco
    from ._kinds import Channel, Custom, Direction, Inversion, Layer, Neuron
    from ._objective import Objective, evaluate
    from ._optimizers import SGD, Adam, Nadam
    from ._plots import plot_maco, plot_maco_grid, save_image, save_rgba, to_uint8
    from ._spectrum import Spectrum, compute_spectrum, load_spectrum, natural_spectrum
    from ._xplique import from_craft, from_xplique
