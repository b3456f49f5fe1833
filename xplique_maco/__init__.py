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
    "_api.visualize": ("maco", "fourier"),
    "_api.accentuate": ("accentuate",),
    "_api.evaluate": ("evaluate",),
    "_apps.lens.run": ("lens",),
    "_apps.lens.results": ("Lens", "ClassConcepts"),
    "_objectives.objective": ("Objective",),
    "_objectives.kinds.units": ("Neuron", "Channel", "Layer"),
    "_objectives.kinds.direction": ("Direction",),
    "_objectives.kinds.inversion": ("Inversion",),
    "_objectives.kinds.custom": ("Custom",),
    "_objectives.kinds.diversity": ("Diversity",),
    "_objectives.xplique": ("from_xplique", "from_craft"),
    "_rendering.spectrum": ("Spectrum", "natural_spectrum", "load_spectrum"),
    "_rendering.spectrum_of_images": ("compute_spectrum",),
    "_rendering.optimizers": ("SGD", "Adam", "Nadam"),
    "_rendering.events": ("Callback", "RunInfo", "StepInfo"),
    "_outputs.callbacks": ("History", "Snapshots", "Recorder", "EarlyStopping"),
    "_outputs.plots": ("plot_maco", "plot_maco_grid", "save_image", "save_rgba", "to_uint8"),
    "_outputs.stalled": ("StalledWarning",),
    "_outputs.tensorboard": ("TensorBoard",),
    "_outputs.preview": ("Preview",),
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}
_MODULES = ("metrics", "zoo", "atlas")

__all__ = [*_HOME, *_MODULES, "__version__"]


def __getattr__(name: str):
    if name in _HOME or name in _MODULES:
        from ._config.backend import require_tensorflow

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
    from ._api.accentuate import accentuate
    from ._api.evaluate import evaluate
    from ._api.visualize import fourier, maco
    from ._apps.lens.results import ClassConcepts, Lens
    from ._apps.lens.run import lens
    from ._objectives.kinds.custom import Custom
    from ._objectives.kinds.direction import Direction
    from ._objectives.kinds.diversity import Diversity
    from ._objectives.kinds.inversion import Inversion
    from ._objectives.kinds.units import Channel, Layer, Neuron
    from ._objectives.objective import Objective
    from ._objectives.xplique import from_craft, from_xplique
    from ._outputs.callbacks import EarlyStopping, History, Recorder, Snapshots
    from ._outputs.plots import plot_maco, plot_maco_grid, save_image, save_rgba, to_uint8
    from ._outputs.preview import Preview
    from ._outputs.stalled import StalledWarning
    from ._outputs.tensorboard import TensorBoard
    from ._rendering.events import Callback, RunInfo, StepInfo
    from ._rendering.optimizers import SGD, Adam, Nadam
    from ._rendering.spectrum import Spectrum, load_spectrum, natural_spectrum
    from ._rendering.spectrum_of_images import compute_spectrum
