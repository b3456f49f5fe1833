"""Settings and files, with no TensorFlow: defaults, argument checks, settings values, atomic files, manifests."""
