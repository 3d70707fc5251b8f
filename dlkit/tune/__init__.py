"""Hyperparameter search on Optuna (`dlkit tune`): search spaces, studies, trials as run directories."""
