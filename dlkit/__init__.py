"""dlkit: from a folder of data to a trained, evaluated, exported deep-learning model."""

__version__ = "0.1.0"  # the one place: pyproject reads it; dlkit.version adds the checkout's git commit
