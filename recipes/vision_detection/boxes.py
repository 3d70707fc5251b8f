"""Object-detection annotations: COCO JSON and YOLO txt folders read into one form, checked box by box.

Both formats become `Annotated` images (file, size, boxes in pixel xyxy, class names). Whole-file
mistakes (not JSON, a missing key, a YOLO line with the wrong number of fields, a class index out of
range) stop with a UserError naming the file and line; single bad boxes are clipped or dropped and
counted in a `BoxReport`, so one sloppy annotation never costs a training run.

Split files and folders are found by `dlkit.data.splits` (train; val, valid, validation or dev; test).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from PIL import Image, UnidentifiedImageError

from dlkit.data.images import list_images
from dlkit.data.splits import split_dirs, split_files
from dlkit.errors import UserError

CLASS_FILES = ("classes.txt", "obj.names", "data.yaml", "dataset.yaml")
CLIP_TOLERANCE = 1.0  # pixels a box may stick out before clipping it counts as a problem
IMAGE_DIR_HINT = (
    "images of a COCO file NAME.json are looked for beside it, in a folder NAME/ beside it and in images/; "
    "set data.image_dir=FOLDER (the folder file_name paths are relative to) when they are elsewhere"
)


@dataclass
class Annotated:
    """One image: where it is, its size, and its boxes (pixel xyxy) with class names."""

    file: Path
    width: int
    height: int
    boxes: list[list[float]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    image_id: int = 0


@dataclass
class BoxSet:
    images: list[Annotated]
    categories: dict[str, int]  # class name -> category id (COCO id, or YOLO class index)


class BoxReport:
    """Problems found while reading, counted by kind with a few examples each."""

    FIXES = {
        "missing image file": "check file_name paths (or set data.image_dir); these images are skipped",
        "unreadable image": "re-save or remove these files; they are skipped",
        "box clipped to the image": "boxes sticking out of the image were cut at its border",
        "box dropped: zero or negative area": "fix width/height (COCO) or w h (YOLO) of these boxes",
        "box dropped: outside the image": "these boxes lie wholly outside their image",
        "box dropped: malformed": "a bbox must hold four finite numbers",
        "box dropped: unknown category id": "add the category to 'categories' or fix category_id",
        "box dropped: class not in the training data": "train on data that has this class",
        "box dropped: unknown image id": "the annotation's image_id is not listed in 'images'",
        "crowd box skipped": "iscrowd=1 regions are ignored, as COCO evaluation does",
        "category with no training boxes (left out)": "the model only learns classes it has boxes of",
        "duplicate image id (later entry ignored)": "give every image its own id",
        "label file without an image": "remove it or add the image",
        "image size differs from its annotation (boxes rescaled)": "check width/height in the annotations",
        "image with no boxes (kept as negative)": "fine if intended: they teach what is not an object",
    }

    INFO = {"image with no boxes (kept as negative)", "crowd box skipped"}

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.examples: dict[str, list[str]] = {}
        self.bad_images: list[Path] = []

    def bad_image(self, kind: str, path: Path) -> None:
        """A missing or unreadable image: counted, and kept for the share-of-bad-images limit."""
        self.bad_images.append(path)
        self.add(kind, str(path))

    def add(self, kind: str, where: str) -> None:
        self.counts[kind] += 1
        if len(self.examples.setdefault(kind, [])) < 3:
            self.examples[kind].append(where)

    def notes(self) -> list[str]:
        """One warning line per kind of problem (the informational kinds are left to `dlkit check`)."""
        return [
            f"{n} x {kind} (e.g. {'; '.join(self.examples[kind])})"
            for kind, n in self.counts.items()
            if kind not in self.INFO
        ]


def clean_box(box: list[float], width: int, height: int, where: str, report: BoxReport) -> list[float] | None:
    """Pixel xyxy clipped to the image, or None (counted) when nothing valid is left."""
    if not all(math.isfinite(v) for v in box):
        report.add("box dropped: malformed", where)
        return None
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 <= x1 or y2 <= y1:
        report.add("box dropped: zero or negative area", where)
        return None
    cx1, cy1, cx2, cy2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
    if cx2 <= cx1 or cy2 <= cy1:
        report.add("box dropped: outside the image", where)
        return None
    if max(cx1 - x1, cy1 - y1, x2 - cx2, y2 - cy2) > CLIP_TOLERANCE:
        report.add("box clipped to the image", where)
    return [cx1, cy1, cx2, cy2]


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, or None if unreadable."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


# --- COCO ---------------------------------------------------------------------------------
def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"annotation file '{path}' is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            "COCO annotations are one JSON object with images, annotations and categories",
        ) from None
    except UnicodeDecodeError:
        raise UserError(f"annotation file '{path}' is not UTF-8 text", "save it as UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise UserError(
            f"annotation file '{path}' holds a JSON {type(data).__name__}, not a COCO object",
            "COCO annotations are one JSON object with images, annotations and categories",
        )
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data.get(k), list)]
    if missing:
        raise UserError(
            f"COCO file '{path}' lacks the key(s) {', '.join(missing)} (each a list)",
            "a COCO file needs 'images', 'annotations' and 'categories'",
        )
    return data


def _require(entry: object, keys: tuple[str, ...], what: str, path: Path) -> dict:
    if not isinstance(entry, dict):
        raise UserError(f"COCO file '{path}': {what} is not an object")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise UserError(
            f"COCO file '{path}': {what} lacks the key(s) {', '.join(missing)}",
            f"every entry needs {', '.join(keys)}",
        )
    return entry


def image_roots(json_path: Path, image_dir: Path | None) -> list[Path]:
    """Folders a COCO file's `file_name`s may be relative to, most likely first.

    Beside the JSON, in a sibling folder named like it (`train/` for `train.json`, the layout of
    split files beside split image folders), in `images/` beside it or one level up; or
    `data.image_dir` (and its NAME/ sub-folder) when given.
    """
    if image_dir is not None:
        return [image_dir, image_dir / json_path.stem]
    folder = json_path.parent
    return [folder, folder / json_path.stem, folder / "images", folder.parent / "images"]


def read_coco(path: Path, report: BoxReport, image_dir: Path | None = None) -> BoxSet:
    """Images with their boxes; a category keeps its COCO id so results can be written back."""
    data = _load_json(path)
    categories: dict[int, str] = {}
    for n, c in enumerate(data["categories"]):
        c = _require(c, ("id", "name"), f"category #{n}", path)
        categories[c["id"]] = str(c["name"])
    roots = image_roots(path, image_dir)
    images: dict[object, Annotated] = {}
    listed: set = set()
    for n, entry in enumerate(data["images"]):
        entry = _require(entry, ("id", "file_name"), f"image #{n}", path)
        if not isinstance(entry["file_name"], str) or not entry["file_name"]:
            raise UserError(
                f"COCO file '{path}': image #{n} (id {entry['id']}) has file_name {entry['file_name']!r}",
                "every image needs a file_name: a path relative to the images folder",
            )
        if entry["id"] in listed:
            report.add("duplicate image id (later entry ignored)", f"{path.name}: id {entry['id']}")
            continue
        listed.add(entry["id"])
        file = next((r / entry["file_name"] for r in roots if (r / entry["file_name"]).is_file()), None)
        if file is None:
            report.bad_image("missing image file", roots[0] / entry["file_name"])
            continue
        w, h = entry.get("width"), entry.get("height")
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            size = image_size(file)
            if size is None:
                report.bad_image("unreadable image", file)
                continue
            w, h = size
        images[entry["id"]] = Annotated(file, w, h, image_id=entry["id"])
    if not data["images"]:
        raise UserError(f"COCO file '{path}' lists no images", "add entries to 'images'")
    for n, ann in enumerate(data["annotations"]):
        ann = _require(ann, ("image_id", "bbox", "category_id"), f"annotation #{n}", path)
        where = f"{path.name} annotation {ann.get('id', f'#{n}')}"
        image = images.get(ann["image_id"])
        if image is None:
            if ann["image_id"] not in listed:
                report.add("box dropped: unknown image id", where)
            continue  # its image is missing or a duplicate: already counted
        if ann.get("iscrowd"):
            report.add("crowd box skipped", where)
            continue
        if ann["category_id"] not in categories:
            report.add("box dropped: unknown category id", f"{where} (category_id {ann['category_id']})")
            continue
        b = ann["bbox"]
        if not _is_numbers(b, 4):
            report.add("box dropped: malformed", f"{where} (bbox {b!r:.40})")
            continue
        box = clean_box([b[0], b[1], b[0] + b[2], b[1] + b[3]], image.width, image.height, where, report)
        if box is not None:
            image.boxes.append(box)
            image.labels.append(categories[ann["category_id"]])
    return BoxSet(list(images.values()), {name: cid for cid, name in categories.items()})


def _is_numbers(values: object, n: int) -> bool:
    return (
        isinstance(values, list)
        and len(values) == n
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    )


# --- YOLO ---------------------------------------------------------------------------------
def read_class_names(folders: list[Path]) -> list[str]:
    """Class names from classes.txt / obj.names (one per line) or data.yaml's `names`."""
    for folder in folders:
        for name in CLASS_FILES:
            file = folder / name
            if not file.is_file():
                continue
            if file.suffix == ".yaml":
                names = (yaml.safe_load(file.read_text()) or {}).get("names")
                if isinstance(names, dict):
                    names = [names[k] for k in sorted(names)]
                if not isinstance(names, list) or not names:
                    raise UserError(f"'{file}' has no 'names' list of classes", "add names: [cat, dog, ...]")
                return [str(n) for n in names]
            names = [line.strip() for line in file.read_text().splitlines() if line.strip()]
            if not names:
                raise UserError(f"class names file '{file}' is empty", "write one class name per line")
            return names
    raise UserError(
        f"no class names file in '{folders[0]}'",
        "YOLO data needs classes.txt (one name per line, first = class 0) or data.yaml names",
    )


def _yolo_line(line: str, file: Path, n: int, classes: list[str]) -> tuple[int, list[float]]:
    fields = line.split()
    if len(fields) != 5:
        raise UserError(
            f"YOLO label file '{file}' line {n} has {len(fields)} fields, expected 5",
            "each line is: class x_center y_center width height (normalised 0-1)",
        )
    try:
        index, values = float(fields[0]), [float(v) for v in fields[1:]]
    except ValueError:
        raise UserError(
            f"YOLO label file '{file}' line {n} is not numbers: '{line.strip()}'",
            "each line is: class x_center y_center width height (normalised 0-1)",
        ) from None
    if not index.is_integer() or not 0 <= index < len(classes):
        raise UserError(
            f"YOLO label file '{file}' line {n}: class index {fields[0]} is out of range "
            f"(the class names file lists {len(classes)}: 0-{len(classes) - 1})",
            "fix the index or add the class name to classes.txt",
        )
    return int(index), values


def read_yolo(images_dir: Path, labels_dir: Path, classes: list[str], report: BoxReport) -> BoxSet:
    """`images/**/x.jpg` with `labels/**/x.txt` (missing label file = an image without objects)."""
    found = list_images(images_dir)
    if not found:
        raise UserError(f"no images in '{images_dir}'", "YOLO data keeps its pictures in images/")
    images: list[Annotated] = []
    for n, file in enumerate(found, start=1):
        size = image_size(file)
        if size is None:
            report.bad_image("unreadable image", file)
            continue
        image = Annotated(file, size[0], size[1], image_id=n)
        label_file = labels_dir / file.relative_to(images_dir).with_suffix(".txt")
        lines = label_file.read_text().splitlines() if label_file.is_file() else []
        for k, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            index, (cx, cy, w, h) = _yolo_line(line, label_file, k, classes)
            (iw, ih) = size
            xyxy = [(cx - w / 2) * iw, (cy - h / 2) * ih, (cx + w / 2) * iw, (cy + h / 2) * ih]
            box = clean_box(xyxy, iw, ih, f"{label_file} line {k}", report)
            if box is not None:
                image.boxes.append(box)
                image.labels.append(classes[index])
        images.append(image)
    stems = {f.relative_to(images_dir).with_suffix("") for f in found}
    for orphan in sorted(labels_dir.rglob("*.txt")) if labels_dir.is_dir() else ():
        if orphan.relative_to(labels_dir).with_suffix("") not in stems:
            report.add("label file without an image", str(orphan))
    return BoxSet(images, {name: i for i, name in enumerate(classes)})


# --- finding the data -----------------------------------------------------------------------
def _read_folder(folder: Path, report: BoxReport, image_dir: Path | None, root: Path) -> BoxSet:
    """A folder holding one COCO JSON, or a YOLO images/ + labels/ pair."""
    if (folder / "images").is_dir() and (folder / "labels").is_dir():
        return read_yolo(folder / "images", folder / "labels", read_class_names([folder, root]), report)
    jsons = sorted(folder.glob("*.json"))
    if (folder / "annotations.json").is_file():
        jsons = [folder / "annotations.json"]
    if len(jsons) == 1:
        return read_coco(jsons[0], report, image_dir)
    if jsons:
        raise UserError(
            f"'{folder}' holds several JSON files ({', '.join(j.name for j in jsons[:5])})",
            "name them train.json / val.json / test.json, or pass --data FILE.json",
        )
    raise UserError(
        f"no COCO JSON or YOLO images/ + labels/ folders in '{folder}'",
        "give a COCO annotations.json (+ images/), or YOLO images/, labels/ and classes.txt",
    )


def read_boxes(path: Path, report: BoxReport, image_dir: Path | None = None) -> dict[str, BoxSet]:
    """Data split on disk as {'train', 'val', 'test'} (some may be absent), else {'all': ...}.

    Layouts: FILE.json; a folder with train.json/val.json/test.json (images beside them, in train/
    val/ test/ folders or in images/); a folder with train/ val/ test/ sub-folders (each a COCO JSON
    or YOLO images/ + labels/, the Roboflow export); YOLO images/<split>/ + labels/<split>/; or one
    COCO JSON (annotations.json) or one YOLO images/ + labels/ pair. Split names take every alias.
    """
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise UserError(
                f"data file '{path}' is not a COCO .json file",
                "give a COCO JSON file, or a folder of COCO or YOLO data",
            )
        return {"all": read_coco(path, report, image_dir)}
    if not path.is_dir():
        raise UserError(f"data path '{path}' is neither a folder nor a JSON file")
    if files := split_files(path, [".json"]):
        return {split: read_coco(f, report, image_dir) for split, f in files.items()}
    if (path / "images").is_dir() and (path / "labels").is_dir() and split_dirs(path / "images"):
        classes = read_class_names([path])
        return {
            split: read_yolo(d, path / "labels" / d.name, classes, report)
            for split, d in split_dirs(path / "images").items()
        }
    if folders := split_dirs(path):
        return {split: _read_folder(d, report, image_dir, path) for split, d in folders.items()}
    if not any(path.iterdir()):
        raise UserError(f"data folder '{path}' is empty", "put a COCO annotations.json and images/ in it")
    return {"all": _read_folder(path, report, image_dir, path)}
