"""Object-detection data: COCO JSON and YOLO txt folders read into one form, checked box by box.

Both formats become `Annotated` images (file, size, boxes in pixel xyxy, class names). Whole-file
mistakes (not JSON, a missing key, a YOLO line with the wrong number of fields, a class index out of
range) stop with a UserError naming the file and line; single bad boxes are clipped or dropped and
counted in a `BoxReport`, so one sloppy annotation never costs a training run.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from dlkit.data.images import is_image, list_images
from dlkit.errors import UserError

SPLIT_NAMES = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
CLASS_FILES = ("classes.txt", "obj.names", "data.yaml", "dataset.yaml")
PAD = 114  # grey fill of letterbox padding (the usual detector choice)
CLIP_TOLERANCE = 1.0  # pixels a box may stick out before clipping it counts as a problem
PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40))


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
        return [f"{n} x {kind} (e.g. {'; '.join(self.examples[kind])})"
                for kind, n in self.counts.items() if kind not in self.INFO]


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
        raise UserError(f"annotation file '{path}' is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                        f"{exc.msg})", "COCO annotations are one JSON object with images, annotations and "
                        "categories") from None
    except UnicodeDecodeError:
        raise UserError(f"annotation file '{path}' is not UTF-8 text", "save it as UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise UserError(f"annotation file '{path}' holds a JSON {type(data).__name__}, not a COCO object",
                        "COCO annotations are one JSON object with images, annotations and categories")
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data.get(k), list)]
    if missing:
        raise UserError(f"COCO file '{path}' lacks the key(s) {', '.join(missing)} (each a list)",
                        "a COCO file needs 'images', 'annotations' and 'categories'")
    return data


def _require(entry: object, keys: tuple[str, ...], what: str, path: Path) -> dict:
    if not isinstance(entry, dict):
        raise UserError(f"COCO file '{path}': {what} is not an object")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise UserError(f"COCO file '{path}': {what} lacks the key(s) {', '.join(missing)}",
                        f"every entry needs {', '.join(keys)}")
    return entry


def _image_roots(json_path: Path, image_dir: Path | None) -> list[Path]:
    if image_dir is not None:
        return [image_dir]
    return [json_path.parent, json_path.parent / "images", json_path.parent.parent / "images"]


def read_coco(path: Path, report: BoxReport, image_dir: Path | None = None) -> BoxSet:
    """Images with their boxes; a category keeps its COCO id so results can be written back."""
    data = _load_json(path)
    categories: dict[int, str] = {}
    for n, c in enumerate(data["categories"]):
        c = _require(c, ("id", "name"), f"category #{n}", path)
        categories[c["id"]] = str(c["name"])
    roots = _image_roots(path, image_dir)
    images: dict[object, Annotated] = {}
    listed: set = set()
    for n, entry in enumerate(data["images"]):
        entry = _require(entry, ("id", "file_name"), f"image #{n}", path)
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
    return isinstance(values, list) and len(values) == n and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


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
    raise UserError(f"no class names file in '{folders[0]}'",
                    "YOLO data needs classes.txt (one name per line, first = class 0) or data.yaml names")


def _yolo_line(line: str, file: Path, n: int, classes: list[str]) -> tuple[int, list[float]]:
    fields = line.split()
    if len(fields) != 5:
        raise UserError(f"YOLO label file '{file}' line {n} has {len(fields)} fields, expected 5",
                        "each line is: class x_center y_center width height (normalised 0-1)")
    try:
        index, values = float(fields[0]), [float(v) for v in fields[1:]]
    except ValueError:
        raise UserError(f"YOLO label file '{file}' line {n} is not numbers: '{line.strip()}'",
                        "each line is: class x_center y_center width height (normalised 0-1)") from None
    if not index.is_integer() or not 0 <= index < len(classes):
        raise UserError(f"YOLO label file '{file}' line {n}: class index {fields[0]} is out of range "
                        f"(the class names file lists {len(classes)}: 0-{len(classes) - 1})",
                        "fix the index or add the class name to classes.txt")
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
def _split_dirs(folder: Path) -> dict[str, Path]:
    return {split: folder / name for split, names in SPLIT_NAMES.items() for name in names
            if (folder / name).is_dir()}


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
        raise UserError(f"'{folder}' holds several JSON files ({', '.join(j.name for j in jsons[:5])})",
                        "name them train.json / val.json / test.json, or pass --data FILE.json")
    raise UserError(f"no COCO JSON or YOLO images/ + labels/ folders in '{folder}'",
                    "give a COCO annotations.json (+ images/), or YOLO images/, labels/ and classes.txt")


def read_boxes(path: Path, report: BoxReport, image_dir: Path | None = None) -> dict[str, BoxSet]:
    """Data split on disk as {'train', 'val', 'test'} (some may be absent), else {'all': ...}.

    Layouts: FILE.json; a folder with train.json/val.json/test.json; a folder with train/ val/ test/
    sub-folders (each a COCO JSON or YOLO images/ + labels/); YOLO images/<split>/ + labels/<split>/;
    or one COCO JSON (annotations.json) or one YOLO images/ + labels/ pair.
    """
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise UserError(f"data file '{path}' is not a COCO .json file",
                            "give a COCO JSON file, or a folder of COCO or YOLO data")
        return {"all": read_coco(path, report, image_dir)}
    if not path.is_dir():
        raise UserError(f"data path '{path}' is neither a folder nor a JSON file")
    split_files = {split: path / f"{name}.json" for split, names in SPLIT_NAMES.items() for name in names
                   if (path / f"{name}.json").is_file()}
    if split_files:
        return {split: read_coco(f, report, image_dir) for split, f in split_files.items()}
    if (path / "images").is_dir() and (path / "labels").is_dir() and _split_dirs(path / "images"):
        classes = read_class_names([path])
        return {split: read_yolo(d, path / "labels" / d.name, classes, report)
                for split, d in _split_dirs(path / "images").items()}
    if split_dirs := _split_dirs(path):
        return {split: _read_folder(d, report, image_dir, path) for split, d in split_dirs.items()}
    if not any(path.iterdir()):
        raise UserError(f"data folder '{path}' is empty", "put a COCO annotations.json and images/ in it")
    return {"all": _read_folder(path, report, image_dir, path)}


# --- images as tensors ------------------------------------------------------------------------
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


class DetectionSet(Dataset):
    """Letterboxed images with boxes as dicts {'image', 'boxes', 'labels', 'scale', 'id'}.

    Labels are class index + 1 (0 is the background of torchvision detectors). With `cache`,
    images are decoded once and kept as uint8, so an epoch costs augmentation and compute only.
    """

    def __init__(self, items: list[Annotated], classes: list[str], size: int, cache: bool = True,
                 report: BoxReport | None = None):
        index = {c: i + 1 for i, c in enumerate(classes)}
        self.size, self.transform = size, None
        self.items: list[Annotated] = []
        self.label_ids: list[list[int]] = []
        for item in items:
            known = [k for k, lab in enumerate(item.labels) if lab in index]
            for lab in item.labels:
                if lab not in index and report is not None:
                    report.add("box dropped: class not in the training data", f"{item.file} ({lab})")
            self.items.append(replace(item, boxes=[item.boxes[k] for k in known],
                                      labels=[item.labels[k] for k in known]))
            self.label_ids.append([index[item.labels[k]] for k in known])
        self.bad: list[Path] = []
        self.cache: list[tuple[torch.Tensor, tuple[float, float]]] | None = None
        if cache:
            decoded = [letterbox(it.file, size) for it in self.items]
            ok = [i for i, d in enumerate(decoded) if d is not None]
            self.bad = [it.file for it, d in zip(self.items, decoded) if d is None]
            self.items = [self._fit_size(self.items[i], decoded[i][2], report) for i in ok]
            self.label_ids = [self.label_ids[i] for i in ok]
            self.cache = [decoded[i][:2] for i in ok]

    @staticmethod
    def _fit_size(item: Annotated, size: tuple[int, int], report: BoxReport | None) -> Annotated:
        """Boxes rescaled to the file's real size when the annotation gives another (a resized copy)."""
        if size == (item.width, item.height):
            return item
        if report is not None:
            report.add("image size differs from its annotation (boxes rescaled)",
                       f"{item.file}: {size[0]}x{size[1]}, annotated {item.width}x{item.height}")
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
        sample = {"image": tv_tensors.Image(image), "labels": labels,
                  "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(self.size, self.size))}
        if self.transform is not None:
            sample = self.transform(sample)
        return {"image": sample["image"].as_subclass(torch.Tensor),
                "boxes": sample["boxes"].as_subclass(torch.Tensor).float(), "labels": sample["labels"],
                "scale": torch.tensor([sx, sy]), "id": str(self.items[i].file)}


class InputImages(Dataset):
    """Unlabelled images for predict, letterboxed like training; unreadable files are skipped."""

    def __init__(self, paths: list[Path], size: int, transform):
        self.size, self.transform = size, transform
        decoded = [(p, letterbox(p, size)) for p in paths]
        self.bad = [p for p, d in decoded if d is None]
        self.items = [(p, d) for p, d in decoded if d is not None]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        path, (image, scale, size) = self.items[i]
        return {"image": self.transform(image), "scale": torch.tensor(scale),
                "size": torch.tensor(size, dtype=torch.float32), "id": str(path)}


def input_paths(inputs: list[str]) -> list[Path]:
    paths: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            paths += list_images(p)
        elif p.is_file() and is_image(p):
            paths.append(p)
        elif p.is_file():
            raise UserError(f"input '{raw}' is not an image file", "give image files or folders of images")
        else:
            raise UserError(f"input '{raw}' does not exist", "give image files or folders of images")
    return paths


# --- writing results ----------------------------------------------------------------------------
def coco_results(image_ids: list[int], detections: list[dict], category_ids: list[int]) -> list[dict]:
    """COCO results entries ({image_id, category_id, bbox xywh, score}) from pixel-xyxy detections.

    `detections[i]` holds 'boxes' (xyxy), 'labels' (class index, 0-based) and 'scores' for image i.
    """
    results = []
    for image_id, det in zip(image_ids, detections):
        for (x1, y1, x2, y2), label, score in zip(det["boxes"], det["labels"], det["scores"]):
            results.append({"image_id": image_id, "category_id": category_ids[label],
                            "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                            "score": round(float(score), 5)})
    return results


def draw_detections(path: Path, boxes: list[list[float]], names: list[str], scores: list[float],
                    palette: dict[str, tuple[int, int, int]], out: Path) -> None:
    """Save the image at `path` with its boxes and 'name score' captions drawn, as PNG at `out`."""
    from torchvision.utils import draw_bounding_boxes

    with Image.open(path) as img:
        pixels = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)
    if boxes:
        width = max(1, round(max(pixels.shape[1:]) / 200))
        pixels = draw_bounding_boxes(pixels, torch.tensor(boxes, dtype=torch.float32),
                                     labels=[f"{n} {s:.2f}" for n, s in zip(names, scores)],
                                     colors=[palette[n] for n in names], width=width, fill_labels=True,
                                     label_colors="black")
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(out)


def write_prediction_files(records: list[dict], classes: list[str], category_ids: list[int],
                           out: Path) -> None:
    """Predict's extra files in `out`: coco_results.json, coco_images.json (the images its ids name,
    so pycocotools can load both) and drawn/<image>.png.

    `records` are predict's: path, image_id, width, height, boxes (pixel xyxy), labels (names), scores.
    """
    index = {c: i for i, c in enumerate(classes)}
    palette = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(classes)}
    (out / "drawn").mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for r in records:
        name = Path(r["path"]).stem
        name = name if name not in used else f"{name}-{r['image_id']}"
        used.add(name)
        draw_detections(Path(r["path"]), r["boxes"], r["labels"], r["scores"], palette,
                        out / "drawn" / f"{name}.png")
    detections = [{"boxes": r["boxes"], "labels": [index[c] for c in r["labels"]], "scores": r["scores"]}
                  for r in records]
    results = coco_results([r["image_id"] for r in records], detections, category_ids)
    (out / "coco_results.json").write_text(json.dumps(results))
    images = [{"id": r["image_id"], "file_name": r["path"], "width": r["width"], "height": r["height"]}
              for r in records]
    categories = [{"id": cid, "name": c} for c, cid in zip(classes, category_ids)]
    index_file = {"images": images, "annotations": [], "categories": categories}
    (out / "coco_images.json").write_text(json.dumps(index_file))
