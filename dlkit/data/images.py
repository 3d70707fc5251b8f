"""Finding and decoding images, with unreadable files skipped, counted and named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from dlkit.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image(p))


def decode(path: Path, size: int, channels: int) -> torch.Tensor | None:
    """uint8 CxSxS: shorter side resized to `size`, centre-cropped square. None if unreadable."""
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            w, h = img.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            img = img.resize((nw, nh), Image.BILINEAR)
            left, top = (nw - size) // 2, (nh - size) // 2
            img = img.crop((left, top, left + size, top + size))
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def image_side(path: Path) -> int | None:
    try:
        with Image.open(path) as img:
            return min(img.size)
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def check_bad_fraction(bad: list[Path], total: int, limit: float, where: Path) -> str | None:
    """A warning naming skipped files, or a UserError when too many are unreadable."""
    if not bad:
        return None
    names = ", ".join(str(p) for p in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    if total == 0 or len(bad) / total > limit:
        raise UserError(
            f"{len(bad)} of {total} images under '{where}' cannot be read (e.g. {names})",
            f"fix or remove them; up to data.max_bad_fraction={limit} are skipped with a warning",
        )
    return f"skipped {len(bad)} unreadable image(s) of {total}: {names}"


class ImageSet(Dataset):
    """Decoded images as dicts {'image', 'label', 'id'} (unlabelled: label -1), the transform applied on
    access. `images` is any decoded split with `paths`, `labels`, `raw(i)` (uint8 CxSxS) and a length."""

    def __init__(self, images, transform=None):
        self.data = images
        self.transform = transform

    @property
    def labels(self) -> list[int]:
        return self.data.labels

    @property
    def reads_from_disk(self) -> bool:
        """Decoded per access (not cached in memory): loader workers may pay off (engine/threads.py)."""
        return getattr(self.data, "images", None) is None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        img = self.data.raw(i)
        if self.transform is not None:
            img = self.transform(img)
        return {"image": img, "label": self.data.labels[i], "id": str(self.data.paths[i])}
