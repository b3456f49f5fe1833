"""Judging visualisations: metrics against models and photos, and the sanity check."""
