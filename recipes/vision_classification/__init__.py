"""vision-classification: images in class folders, split folders or a path,label CSV -> a timm classifier."""

from .recipe import VisionClassification

__all__ = ["VisionClassification"]
