"""Predictions out: one record per input (pure), and the side files of segmentation (a mask per scan,
NIfTI in the scan's own orientation and affine, or PNG for 2D images; optionally an overlay PNG) written
into the folder the core gives. Records name their files; nothing identifying leaves the scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dlkit_recipes.medical_imaging import preprocess
from dlkit_recipes.medical_imaging.scans import Scan, scan_name


def decide(probs: list[float], state: dict, threshold: float) -> int:
    """The predicted label: two labels at the decision threshold (`threshold` > 0 overrides the state's)."""
    if len(probs) == 2 and (threshold > 0 or "threshold" in state):
        pos = state["positive"]
        t = threshold if threshold > 0 else state["threshold"]
        return pos if probs[pos] >= t else 1 - pos
    return int(np.argmax(probs))


def class_record(path: str, probs: list[float], state: dict, threshold: float) -> dict:
    classes = state["classes"]
    best = decide(probs, state, threshold)
    record = {
        "path": path,
        "label": classes[best],
        "score": round(probs[best], 6),
        "probs": {c: round(p, 6) for c, p in zip(classes, probs, strict=True)},
    }
    if len(classes) == 2 and (threshold > 0 or "threshold" in state):
        record["threshold"] = threshold if threshold > 0 else state["threshold"]
    return record


def mask_record(path: str, labels: np.ndarray, scan: Scan, classes: list[str]) -> dict:
    """Voxels (and, for volumes, millilitres) of each foreground class in a predicted mask."""
    counts = np.bincount(labels.ravel(), minlength=len(classes))
    record = {
        "path": path,
        "shape": list(scan.source_shape),
        "voxels": {c: int(counts[i]) for i, c in enumerate(classes) if i > 0},
    }
    if scan.kind != "image":
        ml = float(np.prod(scan.spacing)) / 1000
        record["volume_ml"] = {c: round(int(counts[i]) * ml, 4) for i, c in enumerate(classes) if i > 0}
    return record


def _free_stem(folder: Path, stem: str) -> str:
    """`stem`, or stem_2, stem_3... when an earlier input (this chunk or another) took it."""
    name, n = stem, 2
    while (folder / f"{name}_mask.png").exists() or (folder / f"{name}_mask.nii.gz").exists():
        name, n = f"{stem}_{n}", n + 1
    return name


def write_masks(records: list[dict], outputs: dict, state: dict, folder: Path, overlays: bool) -> None:
    """Each record's mask (and overlay) into `folder`; the record gains 'mask' (and 'overlay')."""
    for record, labels, geometry in zip(records, outputs["labels"], outputs["geometry"], strict=True):
        scan = geometry.scan
        array = labels.astype(np.uint8)
        stem = _free_stem(folder, scan_name(Path(record["path"])))
        if scan.kind == "image":
            mask_path = folder / f"{stem}_mask.png"
            write_png_mask(array, mask_path, state["mask_scale"])
        else:
            mask_path = folder / f"{stem}_mask.nii.gz"
            write_nifti_mask(array, scan, mask_path)
        record["mask"] = str(mask_path)
        if overlays:
            overlay = folder / f"{stem}_overlay.png"
            write_overlay(preprocess.normalise_intensity(scan.array, state["intensity"]), array, overlay)
            record["overlay"] = str(overlay)


# --- writing masks ----------------------------------------------------------------------------
def write_nifti_mask(labels: np.ndarray, scan: Scan, path: Path) -> None:
    """Canonical (X, Y, Z) labels -> the input's own orientation, saved with the input's affine."""
    import nibabel as nib

    image = nib.Nifti1Image(labels.astype(np.uint8), scan.affine)
    back = nib.orientations.ornt_transform(
        nib.io_orientation(scan.affine), nib.io_orientation(scan.source_affine)
    )
    data = np.asarray(image.as_reoriented(back).dataobj, dtype=np.uint8)
    nib.save(nib.Nifti1Image(data.reshape(scan.source_shape), scan.source_affine), str(path))


def write_png_mask(labels: np.ndarray, path: Path, scale: int = 1) -> None:
    from PIL import Image

    Image.fromarray((labels[:, :, 0] * scale).astype(np.uint8), "L").save(path)


def write_overlay(image: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """A PNG of the slice with the most foreground: the scan in grey, each class in its own colour."""
    from PIL import Image

    z = (
        int(np.argmax((labels > 0).reshape(-1, labels.shape[-1]).sum(0)))
        if labels.any()
        else labels.shape[-1] // 2
    )
    grey = image[0, :, :, z]
    lo, hi = np.percentile(grey, [1, 99]) if grey.size else (0, 1)
    grey = np.clip((grey - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.repeat(grey[..., None] * 255, 3, -1)
    colours = np.array([[255, 60, 60], [60, 200, 60], [60, 120, 255], [240, 200, 40], [200, 60, 220]], float)
    sl = labels[:, :, z]
    for k in range(1, int(sl.max()) + 1):
        hit = sl == k
        rgb[hit] = 0.45 * rgb[hit] + 0.55 * colours[(k - 1) % len(colours)]
    if image.shape[-1] > 1:  # volumes: show with anterior up, as radiology viewers do
        rgb = np.rot90(rgb)
    picture = Image.fromarray(rgb.astype(np.uint8), "RGB")
    factor = max(1, 256 // max(picture.size))
    picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST).save(path)
