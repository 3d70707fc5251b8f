"""Scaling fitted on the training split only, kept as two numbers per feature.

Every method (standard, robust, min-max) is stored in the same form, `(x - center) / scale`, so the
fitted state is plain JSON, and applying it is one in-place numpy expression whatever the method.
"""

from __future__ import annotations

import numpy as np

from dlkit.data.clean_options import SCALING_METHODS as METHODS  # the clean.scaling choices


def fit_scaler(values: np.ndarray, method: str) -> list[float]:
    """[center, scale] of `values` (no NaN): mean/std, median/IQR or min/range; scale 1 when degenerate."""
    if method == "none" or values.size == 0:
        return [0.0, 1.0]
    if method == "standard":
        center, scale = float(np.mean(values)), float(np.std(values))
    elif method == "robust":
        q25, center, q75 = (float(q) for q in np.percentile(values, [25, 50, 75]))
        scale = q75 - q25
        if scale <= 1e-12:  # mostly one value (e.g. a sparse count): fall back to the spread it has
            scale = float(np.std(values))
    elif method == "minmax":
        center = float(np.min(values))
        scale = float(np.max(values)) - center
    else:
        raise ValueError(f"unknown scaling method {method!r}; expected one of {METHODS}")
    if not np.isfinite(scale) or scale <= 1e-12:
        scale = 1.0
    return [center if np.isfinite(center) else 0.0, scale]


def apply_scaler(values: np.ndarray, params: list[float]) -> np.ndarray:
    """Scale `values` in place with fitted [center, scale] and return them."""
    center, scale = params
    if center != 0.0:
        values -= center
    if scale != 1.0:
        values /= scale
    return values
