"""dlkit: from a folder of data to a trained, evaluated, exported deep-learning model."""

__version__ = "0.1.0"
