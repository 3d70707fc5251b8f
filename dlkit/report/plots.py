"""Figures for reports: matplotlib's Agg canvas (no display), a colour-blind-safe palette, one style.

Figures are built with `matplotlib.figure.Figure` directly rather than pyplot, so nothing global is
touched and a report can be drawn from any thread or job. Recipes draw their own sections with
`figure(...)` and `save(...)` and the few shared plots here (confusion matrix, image grid).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from cycler import cycler
from matplotlib.figure import Figure

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies; blue first.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
SEQUENTIAL = "viridis"  # perceptually uniform and colour-blind safe, for heat maps
DPI = 100
STYLE = {
    "axes.prop_cycle": cycler(color=PALETTE),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "font.size": 10,
}


def figure(width: float = 6.4, height: float = 4.0, rows: int = 1, cols: int = 1, **kw):
    """(fig, axes) laid out with matplotlib's constrained layout, so labels never overlap."""
    import matplotlib

    matplotlib.rcParams.update(STYLE)
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, **kw)
    return fig, axes


def save(fig, folder: Path, name: str) -> str:
    """Write `fig` as folder/NAME.png; the file name (relative to the page in `folder`)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "figure"
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{safe}.png", dpi=DPI)
    return f"{safe}.png"


def short(label: str, limit: int = 18) -> str:
    """A tick label cut to `limit` characters (long class names would collide)."""
    label = str(label)
    return label if len(label) <= limit else label[: limit - 1] + "…"


def confusion_matrix(cm, classes: list[str], title: str):
    """Counts (rows: true class, columns: predicted), each row also as a share of its class."""
    cm = np.asarray(cm, dtype=float)
    k = len(classes)
    side = min(11.0, 3.2 + 0.45 * k)
    fig, ax = figure(side + 1.2, side)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    ax.set_xticks(
        range(k), [short(c) for c in classes], rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center"
    )
    ax.set_yticks(range(k), [short(c) for c in classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if k <= 20:  # beyond that the numbers would not fit in their cells
        for i in range(k):
            for j in range(k):
                colour = "white" if share[i, j] > 0.55 else "black"
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(im, ax=ax, label="share of the true class", shrink=0.8)
    return fig


def image_grid(images: list, titles: list[str], title: str, cols: int = 4, cmap: str | None = None):
    """Images (H x W or H x W x C arrays in [0, 1] or uint8) in a grid, each with a short title."""
    n = max(1, len(images))
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    fig, axes = figure(2.9 * cols, 3.1 * rows + 0.4, rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, label in zip(axes.flat, images, titles, strict=False):
        ax.imshow(img, cmap=cmap if np.ndim(img) == 2 else None)
        ax.set_title(label, fontsize=8)
    fig.suptitle(title)
    return fig


def to_image(tensor, mean=None, std=None) -> np.ndarray:
    """A C x H x W (normalised) image tensor -> H x W (x 3) floats in [0, 1] for imshow."""
    arr = np.asarray(tensor, dtype=float)
    if arr.ndim == 3:
        if mean is not None and std is not None:
            arr = (
                arr * np.asarray(std, dtype=float)[:, None, None]
                + np.asarray(mean, dtype=float)[:, None, None]
            )
        arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr[:3], 0, -1)
    lo, hi = np.nanmin(arr), np.nanmax(arr)
    if mean is None and (lo < 0 or hi > 1):
        arr = (arr - lo) / (hi - lo or 1)
    return np.clip(arr, 0, 1)
