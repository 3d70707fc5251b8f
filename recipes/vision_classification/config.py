"""vision-classification's default config (`Recipe.config()` returns it), light: nothing heavy is imported, so
`dlkit info` reads it without torch. Constants it shares with the heavy modules live here.
"""

from __future__ import annotations

from dlkit.config import opt

LOSSES = ("cross_entropy", "focal", "kl_div")


def recipe_config() -> dict:
    return {
        "data": {
            "batch_size": 32,
            "image_size": opt(
                0,
                "side in pixels images are resized/cropped to (0 = median side of the "
                "training images, between 32 and 128)",
            ),
            "channels": opt(3, "3 for colour, 1 for greyscale", [1, 3]),
            "augment": opt(
                "light",
                "augmentation preset: light = random crop (+ flip when data.hflip); strong adds "
                "TrivialAugment and erasing",
                ["none", "light", "strong"],
            ),
            "hflip": opt(
                False,
                "random horizontal flips in light/strong augmentation: turn on for photos, whose "
                "meaning survives a mirror (digits, letters and text do not)",
            ),
            "cache": opt(True, "decode images once and keep them in memory (turn off for huge sets)"),
            "max_bad_fraction": opt(0.05, "share of unreadable images skipped with a warning before failing"),
        },
        "model": {"name": "resnet10t", "dropout": 0.1},
        "loss": {
            "name": opt("cross_entropy", "training loss", list(LOSSES)),
            "label_smoothing": 0.1,
        },
        "train": {"lr": 5e-3, "warmup": 0.05, "grad_clip": None},
    }
