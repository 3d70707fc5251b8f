"""vision-face: face images by person -> face embeddings, scored open-set (verification, identification)."""

from dlkit.registry import lazy_exports

RECIPE_META = {  # what `dlkit recipes` lists, without importing torch (dlkit/registry.py)
    "name": "vision-face",
    "task": "face verification and identification",
    "description": (
        "Face embeddings (timm + ArcFace/CosFace/triplet) scored open-set: verification and rank-1."
    ),
    "default_model": "resnet10t",
    "sample_data": "sample_data/vision_face",
    "monitor": "verification_auc",  # `dlkit info`: monitored under the default config
}
__getattr__ = lazy_exports(__name__, VisionFace="recipe", recipe_config="config")

__all__ = ["recipe_config", "VisionFace"]
