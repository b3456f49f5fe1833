"""Objectives and the model taps they read: layers found in nested and shared models, one feature model."""
