"""Pictures: the images themselves (grids.py) and writing them to files and loggers (images.py), used by the
callbacks, generate.py and the report."""
