"""One training loop for every recipe: devices, precision, schedules, checkpoints, progress."""
