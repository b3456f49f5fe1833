"""The entry points: maco, fourier, accentuate and evaluate, from user arguments to a run."""
