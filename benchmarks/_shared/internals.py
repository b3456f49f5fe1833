"""The benchmarks' only reach into private modules of xplique_maco: when the library moves one of
them, this file is the one edit. Every other library name the benchmarks use is public."""

from xplique_maco._config.defaults import MACO
from xplique_maco._engine import trace_count
from xplique_maco._memory import MEMORY_FRACTION, crop_cost, fitting, item_cost
from xplique_maco._memory import _probe as memory_probe

__all__ = ["MACO", "MEMORY_FRACTION", "crop_cost", "fitting", "item_cost", "memory_probe", "trace_count"]
