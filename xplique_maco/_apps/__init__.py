"""Applications built on the entry points: the atlas, the demo and the command line."""
