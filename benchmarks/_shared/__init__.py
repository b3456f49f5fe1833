"""What several benchmarks use (models, rendering, scoring, timing, result paths); imports no script."""
