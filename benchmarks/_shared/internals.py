"""The benchmarks' only reach into private modules of xplique_maco: when the library moves one of
them, this file is the one edit. Every other library name the benchmarks use is public."""

# The lens page and its similar concepts (page_load.py --lens; the lens is not public yet).
from xplique_maco._apps.lens.page import build_lens_page
from xplique_maco._apps.lens.similar import similar_concepts

# maco's defaults, written once in the library (tune.py records them, "ours_glance" renders with them).
from xplique_maco._config.defaults import MACO

# The memory rule that sizes chunks and model passes (memory_rule.py figures it on this machine).
from xplique_maco._rendering.memory import MEMORY_FRACTION, crop_cost, fitting, item_cost
from xplique_maco._rendering.memory import _probe as memory_probe

# How many times the step has been traced (callback_overhead.py: callbacks must not retrace).
from xplique_maco._rendering.step import trace_count

__all__ = [
    "MACO",
    "MEMORY_FRACTION",
    "build_lens_page",
    "crop_cost",
    "fitting",
    "item_cost",
    "memory_probe",
    "similar_concepts",
    "trace_count",
]
