"""What follows a run: callbacks, plots, PNG files, recordings and the atlas page."""
