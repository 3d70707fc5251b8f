"""vision-face's default config (`Recipe.config()` returns it), light: nothing heavy is imported, so
`dlkit info` reads it without torch. Constants it shares with the heavy modules live here.
"""

from __future__ import annotations

from dlkit.config import opt

MARGIN_LOSSES = ("arcface", "cosface")
LOSSES = (*MARGIN_LOSSES, "triplet")
DEFAULT_MARGIN = {"arcface": 0.5, "cosface": 0.35, "triplet": 0.3}


def recipe_config() -> dict:
    return {
        "data": {
            "batch_size": 64,
            "image_size": opt(40, "side in pixels faces are resized/centre-cropped to"),
            "channels": opt(3, "3 for colour, 1 for greyscale", [1, 3]),
            "augment": opt(
                "light",
                "training augmentation: light = small shifts and scales, mirror (data.hflip), "
                "brightness/contrast",
                ["none", "light"],
            ),
            "hflip": opt(True, "mirror faces at random in training (faces are nearly symmetric)"),
            "crop_faces": opt(
                False,
                "cut each image to its largest face with OpenCV's Haar cascade (needs "
                "pip install 'dlkit[face]'); off for faces already cropped",
            ),
            "no_face": opt("skip", "with data.crop_faces: images where no face is found", ["skip", "keep"]),
            "sampler": opt(
                "auto",
                "training batches: random, or pk = P persons x K images each (data.images_per_person); "
                "auto = pk for the triplet loss, random otherwise",
                ["auto", "random", "pk"],
            ),
            "images_per_person": opt(4, "K in P x K batches"),
            "max_bad_fraction": opt(0.05, "share of unreadable images skipped with a warning before failing"),
        },
        "model": {
            "name": "resnet10t",
            "embedding_dim": opt(128, "size of the L2-normalised face embedding"),
        },
        "loss": {
            "name": opt("arcface", "training loss", list(LOSSES)),
            "margin": opt(
                None,
                "margin (null = "
                + ", ".join(f"{k} {v}" for k, v in DEFAULT_MARGIN.items())
                + "; angular for arcface, cosine for cosface, distance for triplet)",
                type=float,
            ),
            "scale": opt(30.0, "logit scale s of arcface/cosface"),
        },
        "train": {"lr": 2e-3, "warmup": 0.05, "min_steps": 400},
        "eval": {
            "pairs": opt(6000, "verification pairs drawn per split (half same person, half not)"),
            "gallery_size": opt(1, "identification: gallery images per person (the rest are probes)"),
        },
        "predict": {
            "gallery": opt(
                None,
                "folder with one sub-folder of face images per enrolled person (or a .json written by "
                "predict.save_gallery): each input gets its best match, or 'unknown'",
                type=str,
            ),
            "save_gallery": opt(None, "write the gallery's embeddings to this .json file", type=str),
            "pairs": opt(False, "verify inputs as pairs (a1 b1 a2 b2 ...): same person or not"),
            "top_k": opt(3, "gallery persons listed per input"),
        },
        "report": {
            "show_faces": opt(
                False, "allow face images in outputs (predict match strips); off: none is copied"
            ),
        },
    }
