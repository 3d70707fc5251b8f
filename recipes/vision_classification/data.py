"""Finding labelled images on disk, decoding them once, and serving them as datasets.

Layouts read (each split folder or file laid out like a whole data folder):
- `DATA/<class>/**/<image>`: one folder per class; val and test are carved out, stratified.
- `DATA/train/<class>/...`, `DATA/val|valid|validation|dev/<class>/...`, `DATA/test/<class>/...`:
  split folders; a missing val or test is carved out of train.
- `DATA.csv` with `path,label[,split]` (paths relative to the CSV): an empty split joins train's pool.
- `DATA/train.csv`, `DATA/val.csv`, `DATA/test.csv`: split files, each `path,label`.
"""

from __future__ import annotations

import csv
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dlkit.data.images import decode, image_side, is_image, list_images
from dlkit.data.splits import parse_split_column, split_dirs, split_files
from dlkit.errors import UserError

Item = tuple[Path, str]  # (image path, class name)


@dataclass
class Images:
    """Decoded images (uint8 CxSxS, kept in memory when `cache`), their labels, and what could not be read."""

    paths: list[Path]
    labels: list[int]
    size: int
    channels: int
    images: list[torch.Tensor] | None = None
    bad: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def raw(self, i: int) -> torch.Tensor:
        if self.images is not None:
            return self.images[i]
        img = decode(self.paths[i], self.size, self.channels)
        if img is None:
            raise UserError(
                f"image '{self.paths[i]}' cannot be read",
                "fix or remove it (with data.cache=true unreadable images are skipped up front)",
            )
        return img


CACHE_SHARE = 0.5  # the decoded-image cache may take at most this share of the memory available


def available_memory() -> int | None:
    """Bytes of memory available now (Linux MemAvailable, else free pages), None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cache_fits(wanted: bool, count: int, size: int, channels: int) -> tuple[bool, str | None]:
    """Whether to keep `count` decoded images in memory, and a note when `data.cache` is overruled."""
    if not wanted:
        return False, None
    need, free = count * size * size * channels, available_memory()
    if free is None or need <= free * CACHE_SHARE:
        return True, None
    return False, (
        f"decoded images would take {need / 2**30:.1f} GiB of the {free / 2**30:.1f} GiB of memory free: "
        "they are read from disk each epoch instead (set data.cache=false to silence this, or lower "
        "data.image_size)"
    )


def read_images(paths: list[Path], labels: list[int], size: int, channels: int, cache: bool) -> Images:
    """Decode every image once when `cache` (unreadable ones are skipped and listed in `bad`)."""
    if not cache:
        return Images(list(paths), list(labels), size, channels)
    images, keep, bad = [], [], []
    for i, p in enumerate(paths):
        img = decode(p, size, channels)
        if img is None:
            bad.append(p)
        else:
            images.append(img)
            keep.append(i)
    return Images([paths[i] for i in keep], [labels[i] for i in keep], size, channels, images, bad)


# --- finding labelled images ---------------------------------------------------------------------
def scan_folder(folder: Path) -> list[Item]:
    """(path, class) for `folder/<class>/**/<image>`, refusing empty classes."""
    classes = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        loose = [p for p in folder.iterdir() if p.is_file() and is_image(p)]
        hint = (
            "images must sit in one sub-folder per class, e.g. DATA/cat/1.png"
            if loose
            else "put images in one sub-folder per class, e.g. DATA/cat/1.png"
        )
        raise UserError(f"no class folders in '{folder}'", hint)
    items = []
    for d in classes:
        found = list_images(d)
        if not found:
            raise UserError(
                f"class folder '{d}' has no images",
                "add images (png, jpg, bmp, gif, tif, webp) or remove the folder",
            )
        items += [(p, d.name) for p in found]
    return items


def read_csv(path: Path) -> tuple[list[Item], list[str | None]]:
    """Rows of path,label[,split]; paths relative to the CSV's folder; split None where not given."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"'{path}' is not a readable CSV ({exc})") from None
    if not rows:
        raise UserError(f"CSV '{path}' has no rows", "write a header 'path,label' and one row per image")
    columns = list(rows[0].keys())
    for col in ("path", "label"):
        if col not in columns:
            raise UserError(
                f"CSV '{path}' has no '{col}' column (columns: {', '.join(map(str, columns))})",
                "the header must name 'path' and 'label' (and optionally 'split')",
            )
    items = []
    for n, row in enumerate(rows, start=2):
        if not (row["path"] or "").strip() or not (row["label"] or "").strip():
            raise UserError(f"CSV '{path}' row {n}: empty path or label")
        items.append((path.parent / row["path"].strip(), row["label"].strip()))
    splits = parse_split_column([row.get("split") for row in rows], str(path))
    return items, splits


def gather(path: Path) -> tuple[list[Item], list[str | None]]:
    """Every labelled image under `path` and the split its layout gives it (None: to be assigned)."""
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise UserError(
                f"data file '{path}' is not a CSV", "give a folder of class folders or a path,label CSV"
            )
        return read_csv(path)
    if not path.is_dir():
        raise UserError(f"data path '{path}' is neither a folder nor a CSV file")
    if not any(path.iterdir()):
        raise UserError(f"data folder '{path}' is empty", "put one sub-folder of images per class in it")
    folders = [d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")]
    dirs = split_dirs(path)
    if dirs and ("train" in dirs or len(dirs) == len(folders)):
        items, given = [], []
        for split, folder in dirs.items():
            found = scan_folder(folder)
            items += found
            given += [split] * len(found)
        return items, given
    files = split_files(path, [".csv"])
    if "train" in files or (files and not folders):
        items, given = [], []
        for split, file in files.items():
            found, marked = read_csv(file)
            clash = next((s for s in marked if s is not None and s != split), None)
            if clash:
                raise UserError(
                    f"'{file}' is the {split} split but its split column says '{clash}'",
                    "drop the split column from split files, or put all rows in one CSV",
                )
            items += found
            given += [split] * len(found)
        return items, given
    items = scan_folder(path)
    return items, [None] * len(items)


def auto_image_size(train: list[Item]) -> int:
    """The median shorter side of (up to ~200) training images, rounded to 8, within 32..128."""
    sides = [s for s in (image_side(p) for p, _ in train[:: max(1, len(train) // 200)]) if s]
    median = int(statistics.median(sides)) if sides else 64
    return int(min(128, max(32, round(median / 8) * 8)))


def normalisation(train: Images) -> dict:
    """Per-channel mean and std of (up to ~1000) training images, in [0, 1] units."""
    step = max(1, len(train) // 1000)
    sample = torch.stack([train.raw(i) for i in range(0, len(train), step)]).float() / 255
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return {"mean": [round(float(m), 5) for m in mean], "std": [round(float(s), 5) for s in std]}


def transform(state: dict, data_cfg: dict, train: bool):
    """Evaluation: scale and normalise. Training adds the configured augmentation."""
    from torchvision.transforms import v2

    size = state["image_size"]
    steps = []
    if train and data_cfg["augment"] != "none":
        steps.append(
            v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True)
            if size >= 96
            else v2.RandomCrop(size, padding=max(2, size // 8), padding_mode="reflect")
        )
        if data_cfg["hflip"]:
            steps.append(v2.RandomHorizontalFlip())
        if data_cfg["augment"] == "strong":
            steps.append(v2.TrivialAugmentWide())
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(state["mean"], state["std"])]
    if train and data_cfg["augment"] == "strong":
        steps.append(v2.RandomErasing(p=0.25))
    return v2.Compose(steps)
