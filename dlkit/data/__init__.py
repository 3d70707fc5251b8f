"""Shared data stages: readers, validation with clear errors, splits."""
