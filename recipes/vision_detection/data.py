"""Annotated images as tensors: letterboxing, box-aware augmentation, splits, and the datasets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from dlkit_recipes.vision_detection.boxes import IMAGE_DIR_HINT, Annotated, BoxReport, BoxSet, image_size
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from dlkit.data.splits import SPLITS, assign_splits, indices
from dlkit.errors import UserError

PAD = 114  # grey fill of letterbox padding (the usual detector choice)


def letterbox(path: Path, size: int) -> tuple[torch.Tensor, tuple[float, float], tuple[int, int]] | None:
    """uint8 3 x size x size with the scale (sx, sy) and original (width, height); None if unreadable.

    The longer side is scaled to `size` and the rest padded at the right and bottom only, so box
    coordinates are a pure scaling of the original ones.
    """
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            scale = size / max(w, h)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            pixels = np.asarray(img.resize((nw, nh), Image.BILINEAR), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    canvas = np.full((size, size, 3), PAD, dtype=np.uint8)
    canvas[:nh, :nw] = pixels
    return torch.from_numpy(canvas).permute(2, 0, 1).contiguous(), (nw / w, nh / h), (w, h)


def transforms(d: dict, side: int, train: bool):
    """Training: flips, zoom + shift and colour jitter that move boxes with the image; else to float."""
    from torchvision.transforms import v2

    steps = []
    if train and d["augment"]:
        if d["hflip"]:
            steps.append(v2.RandomHorizontalFlip())
        if d["vflip"]:
            steps.append(v2.RandomVerticalFlip())
        if d["scale_jitter"] > 0:  # zoom, then a random crop (or pad) back to size: shifts too
            size, j = (side, side), d["scale_jitter"]
            steps += [v2.ScaleJitter(size, (1 - j, 1 + j)), v2.RandomCrop(size, pad_if_needed=True, fill=PAD)]
        if d["color_jitter"] > 0:  # no hue: ten times slower than the rest on uint8 images
            c = d["color_jitter"]
            steps.append(v2.ColorJitter(c, c, c))
        steps.append(v2.SanitizeBoundingBoxes(min_size=2))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(steps)


def split_images(found: dict[str, BoxSet], d: dict, seed: int, evaluate_all: bool) -> dict[str, list]:
    """Images per split: as split on disk, with a missing val/test carved out of train (seeded)."""
    if evaluate_all:
        chosen = [found["test"]] if "test" in found else list(found.values())
        return {"test": [im for s in chosen for im in s.images]}
    if "all" not in found and "train" not in found:
        raise UserError(
            f"the data has {', '.join(found)} split(s) but no train split",
            "add train.json (or a train/ folder) with the training images",
        )
    images: list[Annotated] = []
    given: list[str | None] = []
    for split, boxset in found.items():
        images += boxset.images
        given += [None if split == "all" else split] * len(boxset.images)
    parts = indices(assign_splits(given, d["val_fraction"], d["test_fraction"], seed))
    return {s: [images[i] for i in parts[s]] for s in SPLITS}


def check_bad_images(report: BoxReport, usable: int, limit: float, where: Path) -> None:
    """Missing and unreadable images are skipped with a warning, up to `limit` of them."""
    bad = report.bad_images
    total = len(bad) + usable
    if bad and (total == 0 or len(bad) / total > limit):
        names = ", ".join(str(p) for p in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        missing = report.counts["missing image file"]
        raise UserError(
            f"{len(bad)} of {total} images under '{where}' cannot be read "
            f"({f'{missing} missing, ' if missing else ''}e.g. {names})",
            f"{IMAGE_DIR_HINT}; fix or remove unreadable files; up to data.max_bad_fraction={limit} "
            "are skipped with a warning",
        )
    if usable == 0:
        raise UserError(f"no usable images in '{where}'", "check the image paths and annotations")


class DetectionSet(Dataset):
    """Letterboxed images with boxes as dicts {'image', 'boxes', 'labels', 'scale', 'size', 'id'}.

    Labels are class index + 1 (0 is the background of torchvision detectors). With `cache`,
    images are decoded once and kept as uint8, so an epoch costs augmentation and compute only.
    """

    def __init__(
        self,
        items: list[Annotated],
        classes: list[str],
        size: int,
        transform,
        cache: bool = True,
        report: BoxReport | None = None,
    ):
        index = {c: i + 1 for i, c in enumerate(classes)}
        self.size, self.transform = size, transform
        self.items: list[Annotated] = []
        self.label_ids: list[list[int]] = []
        for item in items:
            known = [k for k, lab in enumerate(item.labels) if lab in index]
            for lab in item.labels:
                if lab not in index and report is not None:
                    report.add("box dropped: class not in the training data", f"{item.file} ({lab})")
            self.items.append(
                replace(item, boxes=[item.boxes[k] for k in known], labels=[item.labels[k] for k in known])
            )
            self.label_ids.append([index[item.labels[k]] for k in known])
        self.bad: list[Path] = []
        self.cache: list[tuple[torch.Tensor, tuple[float, float]]] | None = None
        if cache:
            decoded = [letterbox(it.file, size) for it in self.items]
            ok = [i for i, d in enumerate(decoded) if d is not None]
            self.bad = [it.file for it, d in zip(self.items, decoded, strict=True) if d is None]
            self.items = [self._fit_size(self.items[i], decoded[i][2], report) for i in ok]
            self.label_ids = [self.label_ids[i] for i in ok]
            self.cache = [decoded[i][:2] for i in ok]

    @staticmethod
    def _fit_size(item: Annotated, size: tuple[int, int], report: BoxReport | None) -> Annotated:
        """Boxes rescaled to the file's real size when the annotation gives another (a resized copy)."""
        if size == (item.width, item.height):
            return item
        if report is not None:
            report.add(
                "image size differs from its annotation (boxes rescaled)",
                f"{item.file}: {size[0]}x{size[1]}, annotated {item.width}x{item.height}",
            )
        fx, fy = size[0] / item.width, size[1] / item.height
        boxes = [[x1 * fx, y1 * fy, x2 * fx, y2 * fy] for x1, y1, x2, y2 in item.boxes]
        return replace(item, width=size[0], height=size[1], boxes=boxes)

    def __len__(self) -> int:
        return len(self.items)

    def scale(self, i: int) -> tuple[float, float]:
        """Letterbox scale (sx, sy) of item i, without decoding it when not cached."""
        if self.cache is not None:
            return self.cache[i][1]
        it = self.items[i]
        s = self.size / max(it.width, it.height)
        return max(1, round(it.width * s)) / it.width, max(1, round(it.height * s)) / it.height

    def target(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes (letterboxed pixel xyxy) and labels of item i."""
        it = self.items[i]
        sx, sy = self.scale(i)
        boxes = torch.tensor(it.boxes, dtype=torch.float32).reshape(-1, 4) * torch.tensor([sx, sy, sx, sy])
        return boxes, torch.tensor(self.label_ids[i], dtype=torch.int64)

    def __getitem__(self, i: int) -> dict:
        from torchvision import tv_tensors

        decoded = self.cache[i] if self.cache is not None else letterbox(self.items[i].file, self.size)
        if decoded is None:
            raise UserError(f"image '{self.items[i].file}' became unreadable during training")
        image, (sx, sy) = decoded[:2]
        boxes, labels = self.target(i)
        sample = {
            "image": tv_tensors.Image(image),
            "labels": labels,
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(self.size, self.size)),
        }
        sample = self.transform(sample)
        it = self.items[i]
        return {
            "image": sample["image"].as_subclass(torch.Tensor),
            "boxes": sample["boxes"].as_subclass(torch.Tensor).float(),
            "labels": sample["labels"],
            "scale": torch.tensor([sx, sy]),
            "size": torch.tensor([it.width, it.height], dtype=torch.float32),
            "id": str(it.file),
        }


class InputImages(Dataset):
    """Unlabelled images for predict, letterboxed like training when read (not all held in memory).

    Files whose header cannot be read are left out up front (`bad`); one that breaks later stops.
    """

    def __init__(self, paths: list[Path], size: int, transform):
        self.size, self.transform = size, transform
        sizes = [(p, image_size(p)) for p in paths]
        self.bad = [p for p, s in sizes if s is None]
        self.paths = [p for p, s in sizes if s is not None]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        decoded = letterbox(self.paths[i], self.size)
        if decoded is None:
            raise UserError(f"image '{self.paths[i]}' cannot be decoded", "re-save it or leave it out")
        image, scale, size = decoded
        return {
            "image": self.transform(image),
            "scale": torch.tensor(scale),
            "size": torch.tensor(size, dtype=torch.float32),
            "id": str(self.paths[i]),
        }
