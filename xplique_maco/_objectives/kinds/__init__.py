"""The kinds of objectives, one module each: adding a kind touches one module (see `Kind`)."""
