"""From a scan to the model's input and back: CT windows and per-scan intensity normalisation, then
resampling onto the model grid (`to_grid`) and predicted labels back onto the scan (`from_grid`)."""

from __future__ import annotations

import numpy as np
from dlkit_recipes.medical_imaging.scans import Scan

from dlkit.errors import UserError

# CT windows as (level, width) in Hounsfield units, the usual radiology presets.
WINDOWS = {
    "lung": (-600.0, 1500.0),
    "soft_tissue": (40.0, 400.0),
    "brain": (40.0, 80.0),
    "bone": (400.0, 1800.0),
}


# --- intensity --------------------------------------------------------------------------------
def looks_like_ct(scan: Scan) -> bool:
    """Hounsfield units: air at about -1000 HU. MRI, PET, X-ray and photos have nothing below -500."""
    flat = scan.array.ravel()
    return float(np.percentile(flat[:: max(1, flat.size // 200_000)], 1)) <= -500


def window_range(name: str, level: float, width: float) -> list[float] | None:
    """A window preset (or 'custom' level/width) as [low, high] HU; None for 'none'."""
    if name == "none":
        return None
    if name != "custom":
        level, width = WINDOWS[name]
    if width <= 0:
        raise UserError(f"data.window_width must be positive, got {width}")
    return [level - width / 2, level + width / 2]


def normalise_intensity(array: np.ndarray, spec: dict) -> np.ndarray:
    """Per channel: window (clip to [low, high] and scale to [0, 1]) or percentile clip; then z-score.

    `spec` = {"window": [low, high] | None, "percentiles": [low, high] | None, "zscore": bool}.
    Statistics are per image, so scans from different scanners land on the same scale.
    """
    out = np.empty_like(array, dtype=np.float32)
    for c in range(array.shape[0]):
        x = array[c].astype(np.float32)
        if spec.get("window"):
            lo, hi = spec["window"]
            x = (np.clip(x, lo, hi) - lo) / (hi - lo)
        elif spec.get("percentiles"):
            flat = x.ravel()
            sample = flat[:: max(1, flat.size // 1_000_000)]
            lo, hi = np.percentile(sample, spec["percentiles"])
            x = np.clip(x, lo, hi)
        if spec.get("zscore"):
            x = (x - x.mean()) / max(float(x.std()), 1e-6)
        out[c] = x
    return out


# --- geometry: to the model's grid and back ---------------------------------------------------
def _interpolate(t, shape: tuple[int, ...], labels: bool):
    from torch.nn import functional as F

    if tuple(t.shape[1:]) == tuple(shape):
        return t
    mode = "nearest-exact" if labels else ("bilinear" if len(shape) == 2 else "trilinear")
    kwargs = {} if labels else {"align_corners": False}
    return F.interpolate(t[None].float(), size=tuple(shape), mode=mode, **kwargs)[0]


def _pad_or_crop(t, shape: tuple[int, ...], fill: float):
    """Centre pad (with `fill`) or crop every spatial axis to `shape`."""
    from torch.nn import functional as F

    for axis, want in enumerate(shape, start=1):
        have = t.shape[axis]
        if have > want:
            start = (have - want) // 2
            t = t.narrow(axis, start, want)
        elif have < want:
            before = (want - have) // 2
            pad = [0, 0] * (t.dim() - axis - 1) + [before, want - have - before]
            t = F.pad(t, pad, value=fill)
    return t


def spacing_shape(shape: tuple[int, ...], spacing: tuple[float, ...], target: list[float]) -> tuple[int, ...]:
    """The shape after resampling from `spacing` to `target` mm."""
    return tuple(max(1, int(round(s * sp / t))) for s, sp, t in zip(shape, spacing, target, strict=True))


def to_grid(
    array: np.ndarray,
    spacing: tuple[float, ...],
    size: list[int],
    target_spacing: list[float] | None,
    labels: bool = False,
):
    """(C, *spatial) -> tensor (C, *size): resample to the target spacing and centre pad/crop, or resize."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(array))
    if target_spacing:
        t = _interpolate(t, spacing_shape(t.shape[1:], spacing, target_spacing), labels)
        return _pad_or_crop(t, tuple(size), 0.0 if labels else float(t.min()))
    return _interpolate(t, tuple(size), labels)


def from_grid(labels, shape: tuple[int, ...], spacing: tuple[float, ...], target_spacing: list[float] | None):
    """Predicted labels (*size) back to the scan's own spatial `shape` (the inverse of `to_grid`)."""
    t = labels[None]
    if target_spacing:
        t = _pad_or_crop(t, spacing_shape(shape, spacing, target_spacing), 0.0)
    return _interpolate(t, tuple(shape), labels=True)[0]
