"""Optional face cropping with OpenCV's bundled frontal-face Haar cascade (`data.crop_faces`).

Off by default: face data sets are usually cropped and aligned already. On, each image is cut to its
largest detected face plus a margin, then resized like any other image; an image where no face is
found is reported, and skipped or kept whole (`data.no_face`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from dlkit.errors import UserError
from dlkit.extras import require

MARGIN = 0.2  # share of the detected box added on each side (hair line, chin)


def square(img: Image.Image, size: int) -> torch.Tensor:
    """A PIL image -> uint8 CxSxS, shorter side resized to `size` and centre-cropped (as decode does)."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def face_box(grey: np.ndarray, cascade) -> tuple[int, int, int, int] | None:
    """The largest face (x, y, w, h) the cascade finds, or None."""
    side = min(grey.shape)
    found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4, minSize=(max(12, side // 8),) * 2)
    if len(found) == 0:
        return None
    return tuple(int(v) for v in max(found, key=lambda b: b[2] * b[3]))


class FaceCropper:
    """Callable (path, size, channels) -> (uint8 CxSxS or None when unreadable, whether a face was found)."""

    def __init__(self):
        cv2 = require("cv2", "face")
        folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
        if not hasattr(cv2, "CascadeClassifier") or not folder:  # OpenCV 5 dropped the bundled cascades
            raise UserError(
                f"OpenCV {cv2.__version__} has no bundled Haar face cascade (data.crop_faces needs one)",
                "pip install 'opencv-python-headless>=4.8,<5', or crop the faces beforehand and keep "
                "data.crop_faces=false",
            )
        self.cascade = cv2.CascadeClassifier(folder + "haarcascade_frontalface_default.xml")
        if self.cascade.empty():
            raise UserError(f"OpenCV's Haar face cascade cannot be read from '{folder}'", "reinstall OpenCV")

    def __call__(self, path: Path, size: int, channels: int) -> tuple[torch.Tensor | None, bool]:
        try:
            with Image.open(path) as raw:
                img = raw.convert("L" if channels == 1 else "RGB")
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            return None, False
        box = face_box(np.asarray(img.convert("L")), self.cascade)
        if box is None:
            return square(img, size), False
        x, y, w, h = box
        pad = int(MARGIN * max(w, h))
        img = img.crop(
            (max(0, x - pad), max(0, y - pad), min(img.width, x + w + pad), min(img.height, y + h + pad))
        )
        return square(img, size), True
