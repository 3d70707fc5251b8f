"""vision-classification: images in class folders, split folders or a path,label CSV -> a timm classifier."""

from dlkit.registry import lazy_exports

RECIPE_META = {  # what `dlkit recipes` lists, without importing torch (dlkit/registry.py)
    "name": "vision-classification",
    "task": "image classification",
    "description": "Classify images with any timm model; ImageFolder, split folders or path,label CSV.",
    "default_model": "resnet10t",
    "sample_data": "sample_data/vision_classification",
    "monitor": "accuracy",  # `dlkit info`: monitored under the default config
}
__getattr__ = lazy_exports(__name__, VisionClassification="recipe", recipe_config="config")

__all__ = ["recipe_config", "VisionClassification"]
