"""Finding face images by person, splitting by identity, decoding (optionally face-cropped) into memory.

Layouts read:
- `DATA/<person>/**/<image>`: one folder per person; val and test persons are carved out.
- `DATA/train|val|test/<person>/...`: split folders; a missing val or test is carved out of train.
- `DATA.csv` with `path,identity[,split]` (paths relative to the CSV; `label` is accepted for
  `identity`): an empty split joins train's pool.

Splits are by identity (no person in two splits): the people scored at test time were never seen in
training, as in real use (open set). Persons with a single image cannot give a same-person pair or a
probe, but they are good impostors and gallery distractors: they go to val and test, and are counted.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dlkit.data.images import ImageSet, decode, list_images
from dlkit.data.splits import SPLITS, assign_splits, parse_split_column, split_dirs
from dlkit.errors import UserError

Face = tuple[Path, str]  # (image path, identity)
MIN_PERSONS = 2  # per split: a different-person pair needs two people


@dataclass
class Gathered:
    """Faces found on disk, the split each was given (None = to assign), and what was skipped."""

    items: list[Face]
    given: list[str | None]
    empty_folders: list[Path] = field(default_factory=list)


def _scan(folder: Path, split: str | None, out: Gathered) -> None:
    people = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not people:
        raise UserError(
            f"no person folders in '{folder}'",
            "put each person's face images in a folder of their own, e.g. DATA/alice/1.jpg",
        )
    for person in people:
        found = list_images(person)
        if not found:
            out.empty_folders.append(person)
        out.items += [(p, person.name) for p in found]
        out.given += [split] * len(found)


def _read_csv(path: Path) -> Gathered:
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"'{path}' is not a readable CSV ({exc})") from None
    columns = list(rows[0]) if rows else []
    who = "identity" if "identity" in columns else "label"
    if not rows or "path" not in columns or who not in columns:
        raise UserError(
            f"CSV '{path}' needs a header with 'path' and 'identity' and one row per image "
            f"(columns: {', '.join(map(str, columns)) or 'none'})",
            "write path,identity[,split]; paths are relative to the CSV",
        )
    items = []
    for n, row in enumerate(rows, start=2):
        file, person = (row["path"] or "").strip(), (row[who] or "").strip()
        if not file or not person:
            raise UserError(f"CSV '{path}' row {n}: empty path or {who}")
        items.append((path.parent / file, person))
    return Gathered(items, parse_split_column([row.get("split") for row in rows], str(path)))


def gather(path: Path) -> Gathered:
    """Every face image with its person and given split, from a CSV, split folders or person folders."""
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise UserError(f"'{path}' is not a folder or a .csv", "give a folder of person folders or a CSV")
        return _read_csv(path)
    out = Gathered([], [])
    splits = split_dirs(path)
    for split, folder in splits.items() if splits else [(None, path)]:
        _scan(folder, split, out)
    if not out.items:
        raise UserError(f"no face images under '{path}'", "add png/jpg images in one folder per person")
    return out


# --- splitting by identity ---------------------------------------------------------------------
def identity_splits(
    items: list[Face], given: list[str | None], val_fraction: float, test_fraction: float, seed: int
) -> list[str]:
    """A split for every image with no person in two splits.

    The user's splits are kept (a person in two of them is refused, a person's unsplit images join
    theirs); persons with 2+ images in the
    unsplit pool are divided into train / val / test by person; single-image persons of the pool go to
    the evaluation splits (val and test in proportion) as impostors and gallery distractors.
    """
    where: dict[str, set[str]] = {}
    for (_, person), split in zip(items, given, strict=True):
        if split is not None:
            where.setdefault(person, set()).add(split)
    mixed = sorted(p for p, s in where.items() if len(s) > 1)
    if mixed:
        raise UserError(
            f"{len(mixed)} person(s) appear in more than one split (e.g. '{mixed[0]}' in "
            f"{' and '.join(sorted(where[mixed[0]]))}): face evaluation is open-set",
            "keep each person's images in one split",
        )
    # a person's images without a split follow that person's given split
    given = [
        g if g is not None else next(iter(where.get(person, {None})))
        for (_, person), g in zip(items, given, strict=True)
    ]
    counts = Counter(person for (_, person), g in zip(items, given, strict=True) if g is None)
    several = [i for i, (_, person) in enumerate(items) if given[i] is None and counts[person] >= 2]
    single = [i for i, (_, person) in enumerate(items) if given[i] is None and counts[person] == 1]
    out = [g or "train" for g in given]
    present = {g for g in given if g is not None}
    assigned = assign_splits(  # the pool is train's: carve only the splits the user did not give
        [None] * len(several),
        0.0 if "val" in present else val_fraction,
        0.0 if "test" in present else test_fraction,
        seed,
        groups=[items[i][1] for i in several],
    )
    for i, split in zip(several, assigned, strict=True):
        out[i] = split
    fractions = {"val": val_fraction, "test": test_fraction}
    evaluation = [s for s in ("val", "test") if s not in present and fractions[s] > 0]
    if single and evaluation:  # val takes its share of the single-image persons, test the rest
        order = np.random.default_rng(seed).permutation(len(single))
        share = fractions["val"] / (fractions["val"] + fractions["test"]) if len(evaluation) == 2 else 0.0
        cut = int(round(len(single) * share))
        for rank, k in enumerate(order):
            out[single[k]] = "val" if rank < cut else evaluation[-1]
    return out


def check_split_sizes(path: Path, items: list[Face], splits: list[str]) -> dict[str, dict]:
    """Persons and images per split; a split too small to train on or to score is a UserError."""
    stats: dict[str, dict] = {}
    for s in SPLITS:
        per_person = Counter(person for (_, person), split in zip(items, splits, strict=True) if split == s)
        stats[s] = {
            "images": sum(per_person.values()),
            "persons": len(per_person),
            "single_image_persons": sum(1 for n in per_person.values() if n == 1),
        }
    total = len({person for _, person in items})
    for s in SPLITS:
        persons, repeated = stats[s]["persons"], stats[s]["persons"] - stats[s]["single_image_persons"]
        if persons < MIN_PERSONS or (repeated < 1 if s != "train" else repeated < MIN_PERSONS):
            raise UserError(
                f"the {s} split of '{path}' has {persons} person(s) ({repeated} with 2+ images); "
                f"face training and open-set evaluation need at least {MIN_PERSONS} persons with 2+ "
                "images in train, and in val and test at least 2 persons, one of them with 2+ images "
                f"({total} person(s) in all)",
                "add more persons (one folder each), or lower data.val_fraction/data.test_fraction",
            )
    return stats


# --- decoding -----------------------------------------------------------------------------------
@dataclass
class Faces:
    """Decoded images (uint8 CxSxS) of one split, their person index within the split, and the skipped."""

    paths: list[Path]
    labels: list[int]
    persons: list[str]
    images: list[torch.Tensor]
    bad: list[Path] = field(default_factory=list)
    no_face: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def raw(self, i: int) -> torch.Tensor:
        return self.images[i]


def read_faces(
    faces: list[Face], size: int, channels: int, cropper=None, keep_no_face: bool = False
) -> Faces:
    """Decode every image once; unreadable ones (and, when cropping, faceless ones unless kept) skipped."""
    persons = sorted({person for _, person in faces})
    index = {p: i for i, p in enumerate(persons)}
    out = Faces([], [], persons, [])
    for path, person in faces:
        if cropper is None:
            img = decode(path, size, channels)
        else:
            img, found = cropper(path, size, channels)
            if img is not None and not found:
                out.no_face.append(path)
                if not keep_no_face:
                    continue
        if img is None:
            out.bad.append(path)
            continue
        out.paths.append(path)
        out.labels.append(index[person])
        out.images.append(img)
    return out


class FaceSet(ImageSet):
    """Faces as dicts {'image', 'label' (person within the split), 'index' (position), 'id' (path)}."""

    def __getitem__(self, i: int) -> dict:
        return {**super().__getitem__(i), "index": i}


def normalisation(train: Faces) -> dict:
    """Per-channel mean and std of (up to ~1000) training images, in [0, 1] units."""
    step = max(1, len(train) // 1000)
    sample = torch.stack(train.images[::step]).float() / 255
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return {
        "mean": [round(float(m), 5) for m in sample.mean(dim=(0, 2, 3))],
        "std": [round(float(s), 5) for s in std],
    }


def transform(state: dict, data_cfg: dict, train: bool):
    """Evaluation: scale and normalise. Training adds small shifts and scale changes, a mirror image
    (faces are nearly symmetric) and brightness/contrast jitter: the nuisances a face embedding ignores."""
    from torchvision.transforms import v2

    steps = []
    if train and data_cfg["augment"] == "light":
        size = state["image_size"]
        steps += [v2.RandomResizedCrop(size, scale=(0.75, 1.0), ratio=(0.9, 1.1), antialias=True)]
        if data_cfg["hflip"]:
            steps.append(v2.RandomHorizontalFlip())
        steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.2))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(state["mean"], state["std"])]
    return v2.Compose(steps)
