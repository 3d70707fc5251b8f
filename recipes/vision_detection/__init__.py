"""vision-detection: COCO JSON or YOLO txt folders -> an object detector, scored by COCO mAP.

Images are letterboxed (longer side to `data.image_size`, padded right/bottom) so boxes only scale,
and predictions map back to the original pixels exactly. The default `centernet-tiny` is a small
anchor-free detector (a class heatmap at stride 4, CenterNet; box sides regressed with GIoU over each
object's centre region, TTFNet) that learns from scratch on a CPU in minutes, where two-stage
detectors need far longer. The torchvision detectors are there by name for real work.

Files: `boxes` reads COCO/YOLO into one form; `data` letterboxes, augments and splits; `model` holds
the detectors; `metrics` COCO mAP; `baselines` the prior-box baselines; `outputs` predict's side files.
"""

from dlkit.registry import lazy_exports

RECIPE_META = {  # what `dlkit recipes` lists, without importing torch (dlkit/registry.py)
    "name": "vision-detection",
    "task": "object detection",
    "description": "Find and classify objects (boxes) in images; COCO JSON or YOLO txt; COCO mAP.",
    "default_model": "centernet-tiny",
    "sample_data": "sample_data/vision_detection",
    "monitor": "map_50",  # `dlkit info`: monitored under the default config
}
__getattr__ = lazy_exports(__name__, VisionDetection="recipe", recipe_config="config")

__all__ = ["recipe_config", "VisionDetection"]
