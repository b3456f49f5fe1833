"""Benchmarks of xplique_maco, each run from the repository's root as `python -m benchmarks.NAME`."""
