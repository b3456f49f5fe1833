"""Rendering: phase -> image -> crops -> model -> gradient, compiled once, run chunk by chunk."""
