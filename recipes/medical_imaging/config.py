"""medical-imaging's default config (`Recipe.config()` returns it), light: nothing heavy is imported, so
`dlkit info` reads it without torch. Constants it shares with the heavy modules live here.
"""

from __future__ import annotations

from dlkit.config import opt


def recipe_config() -> dict:
    return {
        "task": opt(
            "segmentation",
            "what to learn: masks per voxel, or one label per scan",
            ["segmentation", "classification"],
        ),
        "mode": opt(
            "auto",
            "2d works on images and axial slices, 3d on whole volumes; auto = 3d when the "
            "training scans are volumes, else 2d",
            ["auto", "2d", "3d"],
        ),
        "data": {
            # 8 as the hand-written U-Net peers use: batch 2 is noisier and, at the same number of
            # examples seen, 0.02-0.05 Dice lower on real MRI slices; 3D grids stay <= 64 per side
            "batch_size": 8,
            "table": opt(
                "labels.csv",
                "CSV in a data folder (or in each split folder train/ val/ test/): path and label "
                "(or mask), optional patient_id and split; paths relative to it",
            ),
            "images_dir": opt(
                "images", "segmentation without a CSV: folder of scans (files or DICOM series)"
            ),
            "masks_dir": opt("masks", "segmentation without a CSV: folder of masks named like the scans"),
            "size": opt(
                [],
                "model grid: [rows, cols] in 2d or [x, y, z] in 3d; [] = median training shape, "
                "scaled down to at most 128 (2d) / 64 (3d) per side",
                type=list,
            ),
            "spacing": opt(
                [],
                "resample to this voxel spacing (mm) and centre pad/crop to data.size; "
                "[] = resize to data.size",
                type=list,
            ),
            "window": opt(
                "auto",
                "CT window in HU (clip, then scale to 0-1); auto = soft_tissue when the scans are in "
                "Hounsfield units (air near -1000), else none; custom uses window_level/width",
                ["auto", "none", "lung", "soft_tissue", "brain", "bone", "custom"],
            ),
            "window_level": opt(40.0, "custom window centre in HU"),
            "window_width": opt(400.0, "custom window width in HU"),
            "percentiles": opt(
                [0.5, 99.5],
                "without a window: clip each scan to these intensity percentiles ([] = off)",
                type=list,
            ),
            "zscore": opt(True, "scale each scan to mean 0, std 1 (after the window or clipping)"),
            "augment": opt(
                "auto",
                "random in-plane flips and intensity jitter on training examples; auto = on for "
                "classification (a few dozen labelled scans overfit without it: test loss 5.5 vs 0.4 "
                "on the sample), off for segmentation (scans are read in one canonical orientation, so "
                "flips teach poses no test scan shows: cost 0.02 Dice on real brain MRI slices)",
                type=bool,
                auto=True,
            ),
            "class_names": opt(
                [],
                "segmentation: names of mask labels 0, 1, ... ([] = background, foreground or class_N)",
                type=list,
            ),
            "positive_label": opt(
                "",
                "classification: the label that counts as positive for AUROC, sensitivity and "
                "specificity ('' = last in sorted order)",
            ),
        },
        "model": {
            "name": opt(
                "auto",
                "auto = unet for segmentation, cnn for classification; cnn = small 2D/3D CNN; any timm "
                "model name for 2D classification",
            ),
            "channels": opt(16, "width of the first level of the U-Net or CNN (doubles per level)"),
            "depth": opt(3, "levels of the U-Net or CNN"),
        },
        "loss": {
            "name": opt(
                "cross_entropy",
                "cross_entropy (plus soft Dice for segmentation, see dice_weight); classification also "
                "takes focal",
                ["cross_entropy", "focal"],
            ),
            "dice_weight": opt(1.0, "segmentation: weight of soft Dice added to cross-entropy"),
        },
        # a budget in steps (train.min_steps, shared): a few dozen slices get enough updates, and
        # Dice jumps between epochs on small data, so the best checkpoint is kept, no early stop
        "train": {"lr": 3e-3, "patience": 0},
        "predict": {
            "chunk_size": 16,  # scans are large: write out and free a few at a time
            "overlays": opt(True, "segmentation: also write a PNG of each scan with its predicted mask"),
            "threshold": opt(
                0.0,
                "classification with two labels: probability of the positive label from which a scan "
                "is called positive; 0 = the one chosen on validation (best sensitivity + specificity)",
            ),
        },
    }
