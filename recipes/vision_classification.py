"""vision-classification: images in class folders (or a path,label CSV) -> a timm classifier.

Images are decoded once, resized (shorter side) and centre-cropped to `data.image_size`, and kept
in memory as uint8 when they fit (`data.cache`), so an epoch costs augmentation and compute only.
Normalisation statistics and the label map are fitted on the training split and saved in the run.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from dlkit.config import opt
from dlkit.data.images import check_bad_fraction, decode, image_side, is_image, list_images
from dlkit.data.splits import stratified_split
from dlkit.errors import UserError
from dlkit.recipe import Finding, Recipe, RecipeData

SPLITS = ("train", "val", "test")


class ImageSet(Dataset):
    """Labelled (or unlabelled, label -1) images as dicts {'image', 'label', 'id'}."""

    def __init__(
        self,
        paths: list[Path],
        labels: list[int],
        size: int,
        channels: int,
        transform=None,
        cache: bool = True,
    ):
        self.paths, self.labels, self.size, self.channels = paths, labels, size, channels
        self.transform = transform
        self.bad: list[Path] = []
        self.images: list[torch.Tensor] | None = None
        if cache:
            images, keep = [], []
            for i, p in enumerate(paths):
                img = decode(p, size, channels)
                if img is None:
                    self.bad.append(p)
                else:
                    images.append(img)
                    keep.append(i)
            self.paths = [paths[i] for i in keep]
            self.labels = [labels[i] for i in keep]
            self.images = images

    def __len__(self) -> int:
        return len(self.paths)

    def raw(self, i: int) -> torch.Tensor:
        if self.images is not None:
            return self.images[i]
        img = decode(self.paths[i], self.size, self.channels)
        if img is None:
            raise UserError(f"image '{self.paths[i]}' became unreadable during training")
        return img

    def __getitem__(self, i: int) -> dict:
        img = self.raw(i)
        if self.transform is not None:
            img = self.transform(img)
        return {"image": img, "label": self.labels[i], "id": str(self.paths[i])}


def _scan_folder(folder: Path) -> list[tuple[Path, str]]:
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


def _read_csv(path: Path) -> tuple[list[tuple[Path, str]], list[str | None]]:
    """Rows of path,label[,split]; paths relative to the CSV's folder."""
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
    items, splits = [], []
    for n, row in enumerate(rows, start=2):
        if not row["path"] or not row["label"]:
            raise UserError(f"CSV '{path}' row {n}: empty path or label")
        items.append((path.parent / row["path"], row["label"]))
        split = (row.get("split") or "").strip().lower() or None
        if split is not None and split not in SPLITS:
            raise UserError(f"CSV '{path}' row {n}: split '{split}' is not one of train, val, test")
        splits.append(split)
    return items, splits


class VisionClassification(Recipe):
    name = "vision-classification"
    task = "image classification"
    description = "Classify images with any timm model; ImageFolder or path,label CSV."
    default_model = "resnet10t"
    sample_data = "sample_data/vision_classification"
    monitor = "accuracy"

    @classmethod
    def config(cls) -> dict:
        return {
            "data": {
                "batch_size": 32,
                "image_size": opt(
                    0,
                    "side in pixels images are resized/cropped to (0 = median side of the "
                    "training images, between 32 and 128)",
                ),
                "channels": opt(3, "3 for colour, 1 for greyscale", [1, 3]),
                "augment": opt(
                    "light",
                    "augmentation preset: light = random crop + flip; strong adds TrivialAugment and erasing",
                    ["none", "light", "strong"],
                ),
                "hflip": opt(True, "random horizontal flips in light/strong augmentation"),
                "cache": opt(True, "decode images once and keep them in memory (turn off for huge sets)"),
                "max_bad_fraction": opt(
                    0.05, "share of unreadable images skipped with a warning before failing"
                ),
            },
            "model": {"name": "resnet10t", "dropout": 0.1},
            "loss": {"label_smoothing": 0.1},
            "train": {"epochs": 15, "lr": 5e-3, "warmup": 0.05, "grad_clip": None},
        }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        from dlkit.modeling import make_loss

        self.loss = make_loss(cfg["loss"], ("cross_entropy", "focal", "kl_div"))

    # --- data -----------------------------------------------------------------------------
    def _gather(self, path: Path, evaluate_all: bool) -> dict[str, list[tuple[Path, str]]]:
        """Items per split: explicit train/val/test folders or CSV column, else a stratified split."""
        if path.is_file():
            if path.suffix.lower() != ".csv":
                raise UserError(
                    f"data file '{path}' is not a CSV", "give a folder of class folders or a path,label CSV"
                )
            items, splits = _read_csv(path)
            if evaluate_all:
                return {"test": items}
            if any(splits):
                groups = {s: [it for it, sp in zip(items, splits, strict=True) if sp == s] for s in SPLITS}
                if not groups["train"]:
                    raise UserError(f"CSV '{path}' has a split column but no 'train' rows")
                return self._fill_missing(groups)
            return self._split(items)
        if not path.is_dir():
            raise UserError(f"data path '{path}' is neither a folder nor a CSV file")
        if not any(path.iterdir()):
            raise UserError(f"data folder '{path}' is empty", "put one sub-folder of images per class in it")
        if (path / "train").is_dir():
            groups = {s: _scan_folder(path / s) if (path / s).is_dir() else [] for s in SPLITS}
            if evaluate_all:
                return {"test": groups["test"] or [it for s in SPLITS for it in groups[s]]}
            return self._fill_missing(groups)
        items = _scan_folder(path)
        return {"test": items} if evaluate_all else self._split(items)

    def _split(self, items: list[tuple[Path, str]]) -> dict[str, list[tuple[Path, str]]]:
        d = self.cfg["data"]
        tr, va, te = stratified_split(
            [c for _, c in items], d["val_fraction"], d["test_fraction"], self.cfg["seed"]
        )
        return {
            "train": [items[i] for i in tr],
            "val": [items[i] for i in va],
            "test": [items[i] for i in te],
        }

    def _fill_missing(self, groups: dict) -> dict:
        """Carve a missing val or test split out of train, stratified."""
        d = self.cfg["data"]
        missing = [s for s in ("val", "test") if not groups[s]]
        if missing:
            frac = {
                "val": d["val_fraction"] if "val" in missing else 0.0,
                "test": d["test_fraction"] if "test" in missing else 0.0,
            }
            train = groups["train"]
            tr, va, te = stratified_split([c for _, c in train], frac["val"], frac["test"], self.cfg["seed"])
            groups = {
                "train": [train[i] for i in tr],
                "val": groups["val"] or [train[i] for i in va],
                "test": groups["test"] or [train[i] for i in te],
            }
        return groups

    def _image_size(self, train: list[tuple[Path, str]]) -> int:
        size = self.cfg["data"]["image_size"]
        if size > 0:
            return size
        sides = [s for s in (image_side(p) for p, _ in train[:: max(1, len(train) // 200)]) if s]
        median = int(statistics.median(sides)) if sides else 64
        return int(min(128, max(32, round(median / 8) * 8)))

    def _transform(self, state: dict, train: bool):
        from torchvision.transforms import v2

        d = self.cfg["data"]
        size = state["image_size"]
        steps = []
        if train and d["augment"] != "none":
            steps.append(
                v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True)
                if size >= 96
                else v2.RandomCrop(size, padding=max(2, size // 8), padding_mode="reflect")
            )
            if d["hflip"]:
                steps.append(v2.RandomHorizontalFlip())
            if d["augment"] == "strong":
                steps.append(v2.TrivialAugmentWide())
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(state["mean"], state["std"])]
        if train and d["augment"] == "strong":
            steps.append(v2.RandomErasing(p=0.25))
        return v2.Compose(steps)

    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        d = self.cfg["data"]
        groups = self._gather(path, evaluate_all)
        notes: list[str] = []
        if state is None:
            classes = sorted({c for _, c in groups["train"]})
            if len(classes) < 2:
                raise UserError(
                    f"the training data in '{path}' has {len(classes)} class(es)",
                    "image classification needs at least two class folders",
                )
            state = {
                "classes": classes,
                "image_size": self._image_size(groups["train"]),
                "channels": d["channels"],
            }
        index = {c: i for i, c in enumerate(state["classes"])}
        sets: dict[str, ImageSet] = {}
        for split, items in groups.items():
            unknown = sorted({c for _, c in items if c not in index})
            if unknown:
                raise UserError(
                    f"{split} data in '{path}' has classes the model was not trained on: "
                    f"{', '.join(unknown[:5])}",
                    f"known classes: {', '.join(state['classes'][:20])}",
                )
            paths = [p for p, _ in items]
            labels = [index[c] for _, c in items]
            sets[split] = ImageSet(paths, labels, state["image_size"], state["channels"], cache=d["cache"])
        total = sum(len(s) + len(s.bad) for s in sets.values())
        note = check_bad_fraction(
            [b for s in sets.values() for b in s.bad], total, d["max_bad_fraction"], path
        )
        if note:
            notes.append(note)
        if "mean" not in state:
            state.update(self._fit_normalisation(sets["train"]))
            state["counts"] = {s: len(v) for s, v in sets.items()}
        if "train" in sets:
            sets["train"].transform = self._transform(state, train=True)
        for split in ("val", "test"):
            if split in sets:
                sets[split].transform = self._transform(state, train=False)
        return RecipeData(sets.get("train"), sets.get("val"), sets.get("test"), state, notes=notes)

    @staticmethod
    def _fit_normalisation(train: ImageSet) -> dict:
        step = max(1, len(train) // 1000)
        sample = torch.stack([train.raw(i) for i in range(0, len(train), step)]).float() / 255
        mean = sample.mean(dim=(0, 2, 3))
        std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return {"mean": [round(float(m), 5) for m in mean], "std": [round(float(s), 5) for s in std]}

    def check(self, path: Path) -> list[Finding]:
        """The shared checks plus class balance of the training split."""
        findings = super().check(path)
        if any(f.severity == "fatal" for f in findings):
            return findings
        groups = self._gather(path, evaluate_all=False)
        counts: dict[str, int] = {}
        for _, c in groups["train"]:
            counts[c] = counts.get(c, 0) + 1
        low, high = min(counts.values()), max(counts.values())
        text = ", ".join(f"{c} {n}" for c, n in sorted(counts.items()))
        if high > 10 * low:
            findings.append(
                Finding(
                    "class balance",
                    "warning",
                    f"training images per class: {text}",
                    "collect more of the rare classes or use loss.name=focal",
                )
            )
        else:
            findings.append(Finding("class balance", "ok", f"training images per class: {text}"))
        return findings

    # --- model and step --------------------------------------------------------------------
    def build_model(self, state: dict) -> torch.nn.Module:
        import timm

        m = self.cfg["model"]
        try:
            return timm.create_model(
                m["name"],
                pretrained=False,
                num_classes=len(state["classes"]),
                in_chans=state["channels"],
                drop_rate=m["dropout"],
            )
        except RuntimeError as exc:
            if "Unknown model" in str(exc):
                close = timm.list_models(f"*{m['name'][:6]}*")[:5]
                raise UserError(
                    f"model.name '{m['name']}' is not a timm model",
                    f"similar names: {', '.join(close)}" if close else "see timm.list_models()",
                ) from None
            raise

    def step(self, model: torch.nn.Module, batch: dict) -> dict:
        logits = model(batch["image"])
        return {"loss": self.loss(logits, batch["label"]), "preds": logits.float(), "target": batch["label"]}

    def metrics(self, state: dict) -> dict:
        from torchmetrics.classification import (
            MulticlassAccuracy,
            MulticlassConfusionMatrix,
            MulticlassF1Score,
        )

        k = len(state["classes"])
        out = {
            "accuracy": MulticlassAccuracy(k, average="micro"),
            "macro_f1": MulticlassF1Score(k, average="macro"),
        }
        if k >= 5:
            out["top5_accuracy"] = MulticlassAccuracy(k, top_k=5, average="micro")
        out["confusion_matrix"] = MulticlassConfusionMatrix(k)
        return out

    def baseline(self, data: RecipeData) -> dict[str, float]:
        """Always answer with the class prior of the training split (majority class first)."""
        k = len(data.state["classes"])
        train_labels = data.train.labels if data.train is not None else None
        prior = (
            torch.bincount(torch.tensor(train_labels), minlength=k).float() if train_labels else torch.ones(k)
        )
        prior = prior / prior.sum()
        target = torch.tensor(data.test.labels)
        preds = prior.expand(len(target), k)
        values = {}
        for name, metric in self.metrics(data.state).items():
            if name != "confusion_matrix":
                metric.update(preds, target)
                values[name] = float(metric.compute())
        values["majority_class"] = data.state["classes"][int(prior.argmax())]
        return values

    # --- predict ---------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        paths: list[Path] = []
        for raw in inputs:
            p = Path(raw)
            if p.is_dir():
                paths += list_images(p)
            elif p.is_file():
                paths.append(p)
            else:
                raise UserError(f"input '{raw}' does not exist", "give image files or folders of images")
        dataset = ImageSet(paths, [-1] * len(paths), state["image_size"], state["channels"])
        if dataset.bad:
            from dlkit import console

            console.warn(
                f"skipped {len(dataset.bad)} unreadable input(s): "
                + ", ".join(str(b) for b in dataset.bad[:5])
            )
        dataset.transform = self._transform(state, train=False)
        return dataset

    def predict_step(self, model: torch.nn.Module, batch: dict) -> dict:
        return {"probs": F.softmax(model(batch["image"]).float(), dim=-1)}

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        classes = state["classes"]
        k = min(5, len(classes))
        top = outputs["probs"].topk(k, dim=-1)
        records = []
        for path, values, idx in zip(ids, top.values.tolist(), top.indices.tolist(), strict=True):
            records.append(
                {
                    "path": path,
                    "label": classes[idx[0]],
                    "score": round(values[0], 6),
                    "top_k": [
                        {"label": classes[i], "prob": round(v, 6)} for i, v in zip(idx, values, strict=True)
                    ],
                }
            )
        return records
