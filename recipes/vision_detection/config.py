"""vision-detection's default config (`Recipe.config()` returns it), light: nothing heavy is imported, so
`dlkit info` reads it without torch. Constants it shares with the heavy modules live here.
"""

from __future__ import annotations

from dlkit.config import opt

TORCHVISION_MODELS = (
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn",
    "ssdlite320_mobilenet_v3_large",
)
MODELS = ("centernet-tiny", *TORCHVISION_MODELS)


def recipe_config() -> dict:
    return {
        "data": {
            "batch_size": 8,
            "image_size": opt(
                0,
                "side in pixels images are letterboxed to (0 = median longer side of "
                "the training images, rounded to 32, between 64 and 320)",
            ),
            "image_dir": opt(
                None,
                "folder COCO file_name paths are relative to (default: beside the JSON, its sibling "
                "folder NAME/ for NAME.json, or images/)",
                type=str,
            ),
            "cache": opt(True, "decode images once and keep them in memory (turn off for huge sets)"),
            "max_bad_fraction": opt(
                0.05, "share of missing/unreadable images skipped with a warning before failing"
            ),
            "augment": opt(True, "box-aware augmentation of training images (flips, scale, colour)"),
            "hflip": opt(True, "random horizontal flips"),
            "vflip": opt(False, "random vertical flips (for aerial or microscope images)"),
            "scale_jitter": opt(
                0.25,
                "random zoom by a factor in [1-x, 1+x], then a random crop or pad back to size (0 = off)",
            ),
            "color_jitter": opt(0.2, "random brightness/contrast/saturation change (0 = off)"),
        },
        "model": {
            "name": opt(
                "centernet-tiny",
                "detector: centernet-tiny (small, from scratch) or a torchvision detector",
                MODELS,
            ),
            "width": opt(16, "base channels of centernet-tiny (stages: 1, 2, 4, 8, 8x this)"),
            "backbone_weights": opt(
                None,
                "local ImageNet backbone weights for a torchvision detector "
                "(resnet50 / mobilenet_v3_large state dict), loaded when a new run starts",
                type=str,
            ),
            "max_detections": opt(100, "boxes kept per image by centernet-tiny, best first"),
        },
        "loss": {
            "name": opt(
                "detector",
                "detectors train with their own losses (centernet-tiny: focal loss on centre "
                "heatmaps + GIoU on boxes; torchvision detectors: each model's own)",
                ["detector"],
            ),
            "label_smoothing": opt(0.0, "does not apply to detectors", [0.0]),
        },
        # a detector from scratch needs many more steps than a classifier: 1,200 is the old 60
        # epochs of the sample (a few minutes of CPU for a few hundred images); larger sets
        # get fewer epochs (at least one), tiny ones at most train.max_epochs
        "train": {"min_steps": 1200, "lr": 3e-3, "warmup": 0.05, "grad_clip": 5.0, "patience": 10},
        "predict": {
            "score_threshold": opt(
                0.3,
                "predictions below this score are left out of the records, the COCO results and the drawings",
            ),
            "merge_iou": opt(
                0.7,
                "a box overlapping a better-scored one (of any class) by more than this IoU is "
                "dropped, so each object gets one label (null = keep all)",
                type=float,
                nullable=True,
            ),
            "draw": opt(
                True,
                "draw the boxes on each input image into drawn/ in the predictions folder (beside "
                "coco_results.json)",
            ),
        },
    }
