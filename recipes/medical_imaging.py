"""medical-imaging: DICOM, NIfTI or PNG scans -> a segmentation U-Net or a classifier, 2D or 3D.

Data is a labels CSV (`path` plus `label` for classification or `mask` for segmentation, optional
`patient_id` and `split`) or, for segmentation, `images/` and `masks/` folders paired by name. Scans
are read into the closest RAS orientation (dlkit.data.medical), normalised per image (CT window, or
percentile clipping, then z-score) and resampled to one grid (`data.size`, optionally at
`data.spacing`). In 2D mode volumes become axial slices. Splits keep every patient in one split.

Only pixel data and geometry are read from DICOM headers; the PatientID, when used to group a
patient's series, is hashed in memory and never written. The monitored metric `score` is the mean
foreground Dice for segmentation and the AUROC for classification.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from dlkit import console
from dlkit.config import opt
from dlkit.data import medical
from dlkit.data.tables import read_table, require_columns
from dlkit.errors import UserError
from dlkit.nets import PositiveClass, SegmentationScore, SmallCNN, UNet, soft_dice_loss
from dlkit.recipe import Finding, Recipe, RecipeData

SPLITS = ("train", "val", "test")
AUTO_MAX_SIDE = {"2d": 128, "3d": 64}  # auto grid: the median training shape, scaled down to fit this


@dataclass
class Case:
    """One row of the data: a scan with its label or mask, and where it came from (for messages)."""

    image: Path
    mask: Path | None = None
    label: str | None = None
    patient: str | None = None
    split: str | None = None
    where: str = ""


class ExampleSet(Dataset):
    """Preprocessed examples held in memory: {'image', 'mask' or 'label', 'id'} (+ 'geometry' to predict)."""

    def __init__(
        self,
        images: list[torch.Tensor],
        targets: list,
        ids: list[str],
        target_key: str | None,
        geometry: list[dict] | None = None,
    ):
        self.images, self.targets, self.ids, self.target_key = images, targets, ids, target_key
        self.geometry = geometry
        self.augment = False

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        image = self.images[i].float()
        target = self.targets[i] if self.target_key else None
        if self.augment:
            image, target = _augment(image, target, self.target_key == "mask")
        item = {"image": image, "id": self.ids[i]}
        if self.target_key == "mask":
            item["mask"] = target.long()
        elif self.target_key == "label":
            item["label"] = target
        if self.geometry is not None:
            item["geometry"] = self.geometry[i]
        return item


def _augment(image: torch.Tensor, target, is_mask: bool):
    """Random flips of the in-plane axes (mask alike) and a small intensity scale and shift."""
    for axis in (1, 2):
        if torch.rand(()) < 0.5:
            image = image.flip(axis)
            if is_mask:
                target = target.flip(axis - 1)
    image = image * (1 + 0.1 * (2 * torch.rand(()) - 1)) + 0.1 * (2 * torch.rand(()) - 1)
    return image, target


def _read_cases_csv(table: Path, task: str) -> list[Case]:
    df = read_table(table)
    target = "mask" if task == "segmentation" else "label"
    require_columns(df, ["path", target], table)
    cases = []
    for n, row in enumerate(df.to_dict("records"), start=2):
        where = f"'{table.name}' row {n}"
        raw, value = row["path"], row[target]
        if _blank(raw) or _blank(value):
            raise UserError(
                f"{where}: empty '{'path' if _blank(raw) else target}'", "fill it in or drop the row"
            )
        split = None if _blank(row.get("split")) else str(row["split"]).strip().lower()
        if split is not None and split not in SPLITS:
            raise UserError(f"{where}: split '{split}' is not one of train, val, test")
        image = table.parent / str(raw)
        if not image.exists():
            raise UserError(
                f"{where}: scan '{image}' does not exist", "paths are relative to the CSV's folder"
            )
        mask = table.parent / str(value) if target == "mask" else None
        if mask is not None and not mask.exists():
            raise UserError(
                f"{where}: mask '{mask}' does not exist", "paths are relative to the CSV's folder"
            )
        patient = None if _blank(row.get("patient_id")) else _label_text(row["patient_id"])
        label = None if target == "mask" else _label_text(value)
        cases.append(Case(image, mask, label, patient, split, where))
    return cases


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""


def _label_text(value) -> str:
    """Labels and patient ids as text; 1.0 from a numeric column reads as '1'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _pair_folders(images: Path, masks: Path) -> list[Case]:
    """Image i pairs with the mask of the same name (or with _mask/_seg/_label added)."""
    entries = sorted(
        p for p in images.iterdir() if not p.name.startswith(".") and (p.is_dir() or medical.is_scan_file(p))
    )
    mask_files = {medical.scan_name(p): p for p in masks.iterdir() if medical.is_scan_file(p)}
    if not entries:
        raise UserError(
            f"folder '{images}' holds no scans", "put NIfTI files, DICOM series folders or PNGs in it"
        )
    cases = []
    for image in entries:
        name = medical.scan_name(image)
        mask = next(
            (
                mask_files[k]
                for k in (name, f"{name}_mask", f"{name}_seg", f"{name}_label")
                if k in mask_files
            ),
            None,
        )
        if mask is None:
            raise UserError(
                f"image '{image}' has no mask in '{masks}'",
                f"name its mask '{name}' plus the mask's suffix (e.g. {name}.nii.gz or {name}.png)",
            )
        cases.append(Case(image, mask, where=f"'{image.name}'"))
    return cases


class MedicalImaging(Recipe):
    name = "medical-imaging"
    task = "medical image segmentation / classification"
    description = (
        "DICOM/NIfTI/PNG scans: U-Net segmentation or CNN/timm classification, 2D or 3D, split by patient."
    )
    default_model = "unet"
    sample_data = "sample_data/medical_imaging"
    monitor = "score"

    @classmethod
    def config(cls) -> dict:
        return {
            "task": opt(
                "segmentation",
                "what to learn: masks per voxel, or one label per scan",
                ["segmentation", "classification"],
            ),
            "mode": opt(
                "auto",
                "2d works on images and axial slices, 3d on whole volumes; auto = 3d when the "
                "training scans are volumes, else 2d",
                ["auto", "2d", "3d"],
            ),
            "data": {
                "batch_size": 2,
                "table": opt(
                    "labels.csv",
                    "CSV in a data folder: path and label (or mask), optional patient_id "
                    "and split; paths relative to it",
                ),
                "images_dir": opt(
                    "images", "segmentation without a CSV: folder of scans (files or DICOM series)"
                ),
                "masks_dir": opt("masks", "segmentation without a CSV: folder of masks named like the scans"),
                "size": opt(
                    [],
                    "model grid: [rows, cols] in 2d or [x, y, z] in 3d; [] = median training shape, "
                    "scaled down to at most 128 (2d) / 64 (3d) per side",
                    type=list,
                ),
                "spacing": opt(
                    [],
                    "resample to this voxel spacing (mm) and centre pad/crop to data.size; "
                    "[] = resize to data.size",
                    type=list,
                ),
                "window": opt(
                    "auto",
                    "CT window in HU (clip, then scale to 0-1); auto = soft_tissue when the "
                    "scans are in Hounsfield units (air near -1000), else none; custom uses "
                    "window_level/width",
                    ["auto", "none", "lung", "soft_tissue", "brain", "bone", "custom"],
                ),
                "window_level": opt(40.0, "custom window centre in HU"),
                "window_width": opt(400.0, "custom window width in HU"),
                "percentiles": opt(
                    [0.5, 99.5],
                    "without a window: clip each scan to these intensity percentiles ([] = off)",
                    type=list,
                ),
                "zscore": opt(True, "scale each scan to mean 0, std 1 (after the window or clipping)"),
                "augment": opt(True, "random in-plane flips and intensity jitter on training examples"),
                "class_names": opt(
                    [],
                    "segmentation: names of mask labels 0, 1, ... ([] = background, foreground or class_N)",
                    type=list,
                ),
                "positive_label": opt(
                    "",
                    "classification: the label that counts as positive for AUROC, "
                    "sensitivity and specificity ('' = last in sorted order)",
                ),
            },
            "model": {
                "name": opt(
                    "auto",
                    "auto = unet for segmentation, cnn for classification; cnn = small 2D/3D "
                    "CNN; any timm model name for 2D classification",
                ),
                "channels": opt(16, "width of the first level of the U-Net or CNN (doubles per level)"),
                "depth": opt(3, "levels of the U-Net or CNN"),
            },
            "loss": {"dice_weight": opt(1.0, "segmentation: weight of soft Dice added to cross-entropy")},
            "train": {"epochs": 20, "lr": 3e-3, "patience": 0},  # short runs; the best checkpoint is kept
            "predict": {
                "mask_dir": opt(
                    "predicted_masks",
                    "segmentation: folder (relative to where predict runs) for "
                    "predicted masks (NIfTI, or PNG for 2D images)",
                ),
                "overlays": opt(True, "segmentation: also write a PNG of each scan with its predicted mask"),
                "threshold": opt(
                    0.0,
                    "classification with two labels: probability of the positive label from which a scan "
                    "is called positive; 0 = chosen on validation (best sensitivity + specificity)",
                ),
            },
        }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        from dlkit.modeling import make_loss

        self.segmentation = cfg["task"] == "segmentation"
        self.loss = make_loss(
            cfg["loss"], ("cross_entropy",) if self.segmentation else ("cross_entropy", "focal")
        )

    # --- listing and splitting -------------------------------------------------------------
    def _cases(self, path: Path) -> list[Case]:
        d = self.cfg["data"]
        if path.is_file():
            return _read_cases_csv(path, self.cfg["task"])
        if (path / d["table"]).is_file():
            return _read_cases_csv(path / d["table"], self.cfg["task"])
        images, masks = path / d["images_dir"], path / d["masks_dir"]
        if self.segmentation and images.is_dir() and masks.is_dir():
            return _pair_folders(images, masks)
        wanted = (
            f"'{d['table']}' (path,mask) or '{d['images_dir']}/' and '{d['masks_dir']}/' folders"
            if self.segmentation
            else f"'{d['table']}' with path,label columns"
        )
        raise UserError(
            f"data folder '{path}' has no {wanted}", "see `dlkit info medical-imaging` for the layouts"
        )

    @staticmethod
    def _groups(cases: list[Case], infos: list[medical.ScanInfo]) -> list[str]:
        """The patient of each case: patient_id, else the (hashed) DICOM PatientID, else the case itself."""
        return [
            c.patient or (f"dicom:{i.group}" if i.group else f"case:{c.image}")
            for c, i in zip(cases, infos, strict=True)
        ]

    def _split(self, cases: list[Case], groups: list[str]) -> dict[str, list[int]]:
        d, seed = self.cfg["data"], self.cfg["seed"]
        labels = [c.label or "" for c in cases]
        if not any(c.split for c in cases):
            parts = medical.group_split(groups, labels, d["val_fraction"], d["test_fraction"], seed)
            return dict(zip(SPLITS, parts, strict=True))
        leaks = medical.leaking_groups(
            [g if c.patient else None for c, g in zip(cases, groups, strict=True)], [c.split for c in cases]
        )
        if leaks:
            raise UserError(
                self._leak_message(cases, groups, leaks),
                "give all of a patient's rows the same split, or drop the split column",
            )
        parts = {s: [i for i, c in enumerate(cases) if c.split == s] for s in SPLITS}
        if not parts["train"]:
            raise UserError("the split column has no 'train' rows")
        missing = [s for s in ("val", "test") if not parts[s]]
        if missing:
            train = parts["train"]
            tr, va, te = medical.group_split(
                [groups[i] for i in train],
                [labels[i] for i in train],
                d["val_fraction"] if "val" in missing else 0.0,
                d["test_fraction"] if "test" in missing else 0.0,
                seed,
            )
            parts = {
                "train": [train[i] for i in tr],
                "val": parts["val"] or [train[i] for i in va],
                "test": parts["test"] or [train[i] for i in te],
            }
        return parts

    @staticmethod
    def _leak_message(cases: list[Case], groups: list[str], leaks: dict) -> str:
        """Name rows, not patient ids: the ids may identify people."""
        shown = []
        for g in list(leaks)[:3]:
            rows = [f"{c.where} ({c.split})" for c, gg in zip(cases, groups, strict=True) if gg == g]
            shown.append(" and ".join(rows[:3]))
        return f"{len(leaks)} patient(s) appear in more than one split: " + "; ".join(shown)

    # --- fitting and applying preprocessing ------------------------------------------------
    def _mode(self, infos: list[medical.ScanInfo]) -> str:
        mode = self.cfg["mode"]
        if mode == "auto":
            return "3d" if any(i.is_volume for i in infos) else "2d"
        return mode

    def _check_fit(self, case_path: Path, info: medical.ScanInfo, mode: str) -> None:
        if mode == "3d" and not info.is_volume:
            raise UserError(
                f"'{case_path}' is a 2D image ({info.shape[0]}x{info.shape[1]}), but mode is 3d",
                "set mode=2d (or auto) for images and slices",
            )
        if mode == "2d" and not self.segmentation and info.is_volume:
            raise UserError(
                f"'{case_path}' is a volume ({'x'.join(map(str, info.shape))}) and 2d classification "
                "takes one image per label",
                "set mode=3d (or auto) to classify whole volumes",
            )

    def _window(self, train: list[Case]) -> list[float] | None:
        """The configured window; `auto` looks at a few training scans for Hounsfield units."""
        d = self.cfg["data"]
        name = d["window"]
        if name == "auto":
            ct = any(
                medical.looks_like_ct(medical.read_scan(c.image))
                for c in train[:5]
                if medical.scan_kind(c.image) != "image"
            )
            name = "soft_tissue" if ct else "none"
            if ct:
                console.info(
                    "scans are in Hounsfield units (CT): soft-tissue window -160..240 HU "
                    "(data.window=lung/bone/brain/custom/none to change)"
                )
        return medical.window_range(name, d["window_level"], d["window_width"])

    def _fit_state(self, mode: str, infos: list[medical.ScanInfo], train: list[Case]) -> dict:
        d, m = self.cfg["data"], self.cfg["model"]
        dims = 2 if mode == "2d" else 3
        for key in ("size", "spacing"):
            value = d[key]
            if value and (
                len(value) != dims or any(not isinstance(v, (int, float)) or v <= 0 for v in value)
            ):
                raise UserError(
                    f"data.{key}={value} needs {dims} positive numbers in {mode} mode (or [] for auto)"
                )
        channels = {i.channels for i in infos}
        spacing = [float(v) for v in d["spacing"]] or None
        if d["size"]:
            size = [int(v) for v in d["size"]]
        else:
            shapes = [
                medical.spacing_shape(i.shape[:dims], i.spacing[:dims], spacing)
                if spacing
                else i.shape[:dims]
                for i in infos
            ]
            median = [statistics.median(s[a] for s in shapes) for a in range(dims)]
            scale = min(1.0, AUTO_MAX_SIDE[mode] / max(median))
            smallest = 2 ** (m["depth"] - 1)
            size = [max(smallest, int(round(v * scale))) for v in median]
        return {
            "task": self.cfg["task"],
            "mode": mode,
            "channels": max(channels),
            "size": size,
            "spacing": spacing,
            "intensity": {
                "window": self._window(train),
                "percentiles": [float(p) for p in d["percentiles"]] or None,
                "zscore": d["zscore"],
            },
        }

    def _read(self, path: Path, state: dict) -> medical.Scan:
        scan = (
            medical.read_image(path, state["channels"])
            if medical.scan_kind(path) == "image"
            else medical.read_scan(path)
        )
        if scan.array.shape[0] != state["channels"]:
            raise UserError(
                f"'{path}' has {scan.array.shape[0]} channel(s), the model takes {state['channels']}",
                "give every scan the same channels (e.g. the same MRI sequences)",
            )
        return scan

    @staticmethod
    def _grids(array: np.ndarray, spacing: tuple, state: dict, labels: bool = False) -> list[torch.Tensor]:
        """(C, X, Y, Z) -> one tensor on the model grid (3d) or one per axial slice (2d)."""
        if state["mode"] == "3d":
            return [medical.to_grid(array, spacing, state["size"], state["spacing"], labels)]
        return [
            medical.to_grid(array[..., k], spacing[:2], state["size"], state["spacing"], labels)
            for k in range(array.shape[-1])
        ]

    def _images(self, scan: medical.Scan, state: dict) -> list[torch.Tensor]:
        array = medical.normalise_intensity(scan.array, state["intensity"])
        return [g.to(torch.float16) for g in self._grids(array, scan.spacing, state)]

    def _mask(self, case: Case, scan: medical.Scan) -> tuple[np.ndarray, set[int]]:
        labels, stored = medical.read_mask(case.mask)
        mismatch = self._shape_mismatch(case, scan, labels, stored)
        if mismatch:
            raise mismatch
        return labels, medical.mask_values(labels, case.mask)

    @staticmethod
    def _shape_mismatch(
        case: Case, scan: medical.Scan, labels: np.ndarray, stored: tuple
    ) -> UserError | None:
        if labels.shape == scan.shape:
            return None
        return UserError(
            f"mask '{case.mask}' is {'x'.join(map(str, stored))} but its image '{case.image}' is "
            f"{'x'.join(map(str, scan.source_shape))}",
            "a mask must have its image's shape",
        )

    def _read_examples(self, cases: list[Case], state: dict, masks: dict | None = None) -> ExampleSet:
        """Read, check and preprocess cases; raw mask labels are collected in `masks` for fitting classes."""
        images, targets, ids = [], [], []
        for case in cases:
            scan = self._read(case.image, state)
            grids = self._images(scan, state)
            images += grids
            ids += [str(case.image)] * len(grids)
            if self.segmentation:
                labels, values = self._mask(case, scan)
                if masks is not None:
                    masks[case.mask] = values
                else:
                    self._check_labels(values, case.mask, state)
                    labels = labels / state["mask_scale"]
                targets += [
                    g[0].to(torch.int16) for g in self._grids(labels[None], scan.spacing, state, True)
                ]
            else:
                targets += [state["classes"].index(case.label)] * len(grids)
        return ExampleSet(images, targets, ids, "mask" if self.segmentation else "label")

    @staticmethod
    def _check_labels(values: set[int], mask: Path, state: dict) -> None:
        k, scale = len(state["classes"]), state["mask_scale"]
        for v in sorted(values):
            if v % scale or v // scale >= k:
                allowed = ", ".join(str(i * scale) for i in range(k))
                raise UserError(
                    f"mask '{mask}' holds the label {v}, but the training masks use only {allowed}",
                    "fix the mask, or name every label in data.class_names",
                )

    def _fit_classes(self, values: dict[Path, set[int]], notes: list[str]) -> dict:
        """Segmentation classes from the training masks (0/255 masks read as 0/1)."""
        union = set().union(*values.values()) if values else set()
        scale = 255 if union == {0, 255} else 1
        names = list(self.cfg["data"]["class_names"])
        k = len(names) if names else max(union) // scale + 1
        if k < 2:
            raise UserError(
                "the training masks hold only background (label 0)",
                "segmentation needs masks with at least one foreground label",
            )
        if not names:
            names = (
                ["background", "foreground"]
                if k == 2
                else ["background"] + [f"class_{i}" for i in range(1, k)]
            )
        state = {"classes": [str(n) for n in names], "mask_scale": scale}
        for mask, vals in values.items():
            self._check_labels(vals, mask, state)
        unused = sorted(set(range(k)) - {v // scale for v in union})
        if unused:
            notes.append(f"mask label(s) {', '.join(map(str, unused))} never appear in the training masks")
        if scale == 255:
            notes.append("masks hold 0/255: read as background/foreground")
        return state

    def _fit_labels(self, cases: list[Case]) -> dict:
        classes = sorted({c.label for c in cases})
        if len(classes) < 2:
            raise UserError(
                f"the training cases have {len(classes)} label(s)", "classification needs two or more"
            )
        wanted = self.cfg["data"]["positive_label"]
        if wanted and wanted not in classes:
            raise UserError(f"data.positive_label '{wanted}' is not a label (labels: {', '.join(classes)})")
        return {"classes": classes, "positive": classes.index(wanted) if wanted else len(classes) - 1}

    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        cases = self._cases(path)
        infos = [medical.probe(c.image) for c in cases]
        mode = state["mode"] if state else self._mode(infos)
        for c, i in zip(cases, infos, strict=True):
            self._check_fit(c.image, i, mode)
        groups = self._groups(cases, infos)
        parts = {"test": list(range(len(cases)))} if evaluate_all else self._split(cases, groups)
        notes: list[str] = []
        fresh = state is None
        if fresh:
            state = self._fit_state(
                mode, [infos[i] for i in parts["train"]], [cases[i] for i in parts["train"]]
            )
            if not self.segmentation:
                state.update(self._fit_labels([cases[i] for i in parts["train"]]))
        sets: dict[str, ExampleSet] = {}
        if fresh and self.segmentation:
            values: dict = {}
            sets["train"] = self._read_examples([cases[i] for i in parts["train"]], state, values)
            state.update(self._fit_classes(values, notes))
            scale = state["mask_scale"]
            sets["train"].targets = [t // scale for t in sets["train"].targets]
        for split, idx in parts.items():
            if split not in sets:
                if not self.segmentation:
                    self._known_labels([cases[i] for i in idx], state, split)
                sets[split] = self._read_examples([cases[i] for i in idx], state)
        if fresh:
            state["counts"] = {s: len(sets[s]) for s in SPLITS}
            state["patients"] = {s: len({groups[i] for i in parts[s]}) for s in SPLITS}
        if "train" in sets:
            sets["train"].augment = self.cfg["data"]["augment"]
        return RecipeData(sets.get("train"), sets.get("val"), sets.get("test"), state, notes=notes)

    @staticmethod
    def _known_labels(cases: list[Case], state: dict, split: str) -> None:
        unknown = sorted({c.label for c in cases} - set(state["classes"]))
        if unknown:
            raise UserError(
                f"{split} data has labels the model was not trained on: {', '.join(unknown[:5])}",
                f"known labels: {', '.join(state['classes'])}",
            )

    # --- model, step, metrics --------------------------------------------------------------
    def _model_name(self) -> str:
        name = self.cfg["model"]["name"]
        if name == "auto":
            return "unet" if self.segmentation else "cnn"
        return name

    def build_model(self, state: dict) -> torch.nn.Module:
        m, name = self.cfg["model"], self._model_name()
        dims = 2 if state["mode"] == "2d" else 3
        common = {
            "channels": m["channels"],
            "depth": m["depth"],
            "act": m["activation"],
            "dropout": m["dropout"],
        }
        if self.segmentation:
            if name != "unet":
                raise UserError(f"model.name '{name}' cannot segment", "use model.name=unet (or auto)")
            return UNet(dims, state["channels"], len(state["classes"]), **common)
        if name == "cnn":
            return SmallCNN(dims, state["channels"], len(state["classes"]), **common)
        if dims == 3:
            raise UserError(
                f"model.name '{name}' is not a 3D model", "use model.name=cnn (or auto) in 3d mode"
            )
        from dlkit_recipes.vision_classification import VisionClassification

        return VisionClassification.build_model(self, state)  # any timm model; same checks and messages

    def step(self, model: torch.nn.Module, batch: dict) -> dict:
        logits = model(batch["image"])
        if self.segmentation:
            target = batch["mask"]
            loss = self.loss(logits, target)
            weight = self.cfg["loss"]["dice_weight"]
            if weight > 0:
                loss = loss + weight * soft_dice_loss(logits, target)
            return {"loss": loss, "preds": logits.float(), "target": target}
        return {"loss": self.loss(logits, batch["label"]), "preds": logits.float(), "target": batch["label"]}

    def metrics(self, state: dict) -> dict:
        if self.segmentation:
            fg = list(range(1, len(state["classes"])))
            out = {
                "score": SegmentationScore("dice", fg),
                "dice": SegmentationScore("dice", fg),
                "iou": SegmentationScore("iou", fg),
            }
            for c in fg:
                out[f"dice_{state['classes'][c]}"] = SegmentationScore("dice", [c])
                out[f"iou_{state['classes'][c]}"] = SegmentationScore("iou", [c])
            return out
        from torchmetrics import classification as tmc

        k = len(state["classes"])
        if k == 2:  # thresholded at the decision threshold chosen on validation (0.5 until then)
            pos, t = state["positive"], state.get("threshold", 0.5)
            return {
                "score": PositiveClass(tmc.BinaryAUROC(), pos),
                "auroc": PositiveClass(tmc.BinaryAUROC(), pos),
                "accuracy": PositiveClass(tmc.BinaryAccuracy(threshold=t), pos),
                "sensitivity": PositiveClass(tmc.BinaryRecall(threshold=t), pos),
                "specificity": PositiveClass(tmc.BinarySpecificity(threshold=t), pos),
                "confusion_matrix": PositiveClass(tmc.BinaryConfusionMatrix(threshold=t), pos),
            }
        return {
            "score": tmc.MulticlassAUROC(k),
            "auroc": tmc.MulticlassAUROC(k),
            "accuracy": tmc.MulticlassAccuracy(k, average="micro"),
            "sensitivity": tmc.MulticlassRecall(k, average="macro"),
            "specificity": tmc.MulticlassSpecificity(k, average="macro"),
            "confusion_matrix": tmc.MulticlassConfusionMatrix(k),
        }

    def baseline(self, data: RecipeData) -> dict:
        """Classification: always the training majority class. Segmentation: the label most often seen at
        each voxel of the training masks (all background when lesions move around; an atlas for organs)."""
        state, test = data.state, data.test
        k = len(state["classes"])
        if self.segmentation:
            if data.train is not None and len(data.train):
                counts = sum(F.one_hot(t.long(), k).int() for t in data.train.targets)
                prior = counts.argmax(-1)
            else:
                prior = torch.zeros(state["size"], dtype=torch.long)
            logits = F.one_hot(prior, k).movedim(-1, 0).float()
            batches = [
                (
                    logits.expand(len(test.targets[i : i + 32]), *logits.shape),
                    torch.stack([t.long() for t in test.targets[i : i + 32]]),
                )
                for i in range(0, len(test), 32)
            ]
            name = "voxel-wise training majority"
        else:
            train = data.train.targets if data.train is not None else []
            prior = (
                torch.bincount(torch.tensor(train, dtype=torch.long), minlength=k).float()
                if train
                else torch.ones(k)
            )
            target = torch.tensor(test.targets)
            majority = int(prior.argmax())  # always answered, whatever the decision threshold
            batches = [(10 * F.one_hot(torch.tensor(majority), k).float().expand(len(target), k), target)]
            name = f"majority class '{state['classes'][majority]}'"
        values: dict = {}
        for metric_name, metric in self.metrics(state).items():
            if metric_name != "confusion_matrix":
                for preds, target in batches:
                    metric.update(preds, target)
                values[metric_name] = float(metric.compute())
        values["baseline"] = name
        return values

    def calibrate(self, ids: list, outputs: dict, data: RecipeData) -> dict:
        """Two labels: the decision threshold on the positive label's probability, from validation.

        `predict.threshold` 0 picks the one with the best sensitivity + specificity (Youden's J); the
        midpoint of the tied best ones keeps it away from any single validation scan.
        """
        state = data.state
        if self.segmentation or len(state["classes"]) != 2:
            return {}
        fixed = self.cfg["predict"]["threshold"]
        target = torch.tensor(data.val.targets) == state["positive"]
        if fixed > 0 or target.all() or not target.any():
            return {"threshold": fixed or 0.5}
        scores = outputs["probs"][:, state["positive"]]
        levels = torch.unique(scores)
        cuts = torch.cat([levels[:1] / 2, (levels[1:] + levels[:-1]) / 2, (levels[-1:] + 1) / 2])
        called = scores[None, :] >= cuts[:, None]
        youden = (called & target).sum(1) / target.sum() + (~called & ~target).sum(1) / (~target).sum() - 1
        best = cuts[youden >= youden.max() - 1e-9]
        return {"threshold": round(float(best[len(best) // 2]), 6)}

    @staticmethod
    def _decide(probs: list[float], state: dict) -> int:
        if len(probs) == 2 and "threshold" in state:
            pos = state["positive"]
            return pos if probs[pos] >= state["threshold"] else 1 - pos
        return int(np.argmax(probs))

    # --- predict ---------------------------------------------------------------------------
    def collate(self, items: list[dict]) -> dict:
        """Stack tensors; keep ids and geometry (scan references) as lists."""
        out: dict = {}
        for key in items[0]:
            values = [it[key] for it in items]
            if isinstance(values[0], torch.Tensor):
                out[key] = torch.stack(values)
            elif isinstance(values[0], int):
                out[key] = torch.tensor(values)
            else:
                out[key] = values
        return out

    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        paths: list[Path] = []
        for raw in inputs:
            p = Path(raw)
            if not p.exists():
                raise UserError(
                    f"input '{raw}' does not exist", "give scan files, DICOM series folders or folders"
                )
            paths += medical.find_scans(p) if p.is_dir() else [p]
        images, ids, geometry = [], [], []
        for n, path in enumerate(paths):
            self._check_fit(path, medical.probe(path), state["mode"])
            scan = self._read(path, state)
            grids = self._images(scan, state)
            images += grids
            ids += [str(path)] * len(grids)
            geometry += [{"input": n, "slice": k, "scan": scan} for k in range(len(grids))]
        return ExampleSet(images, [], ids, None, geometry)

    def predict_step(self, model: torch.nn.Module, batch: dict) -> dict:
        logits = model(batch["image"]).float()
        if self.segmentation:
            return {"labels": logits.argmax(1).to(torch.uint8), "geometry": batch.get("geometry", [])}
        return {"probs": logits.softmax(-1)}

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        if not self.segmentation:
            return [
                self._class_record(path, probs, state)
                for path, probs in zip(ids, outputs["probs"].tolist(), strict=True)
            ]
        folder = Path(self.cfg["predict"]["mask_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        by_input: dict[int, list[int]] = {}
        for j, geo in enumerate(outputs["geometry"]):
            by_input.setdefault(geo["input"], []).append(j)
        used: set[str] = set()
        return [
            self._write_prediction(
                ids[rows[0]],
                outputs["geometry"][rows[0]]["scan"],
                [outputs["labels"][j] for j in rows],
                state,
                folder,
                used,
            )
            for rows in by_input.values()
        ]

    def _class_record(self, path: str, probs: list[float], state: dict) -> dict:
        classes = state["classes"]
        best = self._decide(probs, state)
        record = {
            "path": path,
            "label": classes[best],
            "score": round(probs[best], 6),
            "probs": {c: round(p, 6) for c, p in zip(classes, probs, strict=True)},
        }
        if "threshold" in state:
            record["threshold"] = state["threshold"]
        return record

    def _write_prediction(
        self,
        path: str,
        scan: medical.Scan,
        grids: list[torch.Tensor],
        state: dict,
        folder: Path,
        used: set[str],
    ) -> dict:
        if state["mode"] == "3d":
            labels = medical.from_grid(grids[0], scan.shape, scan.spacing, state["spacing"])
        else:
            labels = torch.stack(
                [medical.from_grid(g, scan.shape[:2], scan.spacing[:2], state["spacing"]) for g in grids],
                dim=-1,
            )
        labels = labels.to(torch.uint8).numpy()
        stem = medical.scan_name(Path(path))
        while stem in used:
            stem += "_"
        used.add(stem)
        if scan.kind == "image":
            mask_path = folder / f"{stem}_mask.png"
            medical.write_png_mask(labels, mask_path, state["mask_scale"])
        else:
            mask_path = folder / f"{stem}_mask.nii.gz"
            medical.write_nifti_mask(labels, scan, mask_path)
        classes = state["classes"]
        counts = np.bincount(labels.ravel(), minlength=len(classes))
        record = {
            "path": path,
            "mask": str(mask_path),
            "shape": list(scan.source_shape),
            "voxels": {c: int(counts[i]) for i, c in enumerate(classes) if i > 0},
        }
        if scan.kind != "image":
            ml = float(np.prod(scan.spacing)) / 1000
            record["volume_ml"] = {c: round(int(counts[i]) * ml, 4) for i, c in enumerate(classes) if i > 0}
        if self.cfg["predict"]["overlays"]:
            overlay = folder / f"{stem}_overlay.png"
            medical.write_overlay(
                medical.normalise_intensity(scan.array, state["intensity"]), labels, overlay
            )
            record["overlay"] = str(overlay)
        return record

    # --- check -----------------------------------------------------------------------------
    def check(self, path: Path) -> list[Finding]:
        try:
            cases = self._cases(path)
        except UserError as exc:
            return [Finding("data listed", "fatal", exc.message, exc.hint or "")]
        found = [Finding("data listed", "ok", f"{len(cases)} cases")]
        infos, unreadable = {}, []
        for i, c in enumerate(cases):
            try:
                infos[i] = medical.probe(c.image)
            except UserError as exc:
                unreadable.append(exc.message)
        found += self._check_leakage(cases)
        found += self._check_contents(cases, infos, unreadable)
        if not unreadable and not any(f.severity == "fatal" for f in found):
            found += super().check(path)
        return found

    def _check_leakage(self, cases: list[Case]) -> list[Finding]:
        patients = [c.patient for c in cases]
        if not any(patients):
            return [
                Finding(
                    "patient leakage",
                    "info",
                    "no patient_id column: each scan counts as its own patient "
                    "(DICOM PatientIDs, hashed, group a patient's series)",
                    "add a patient_id column so no patient lands in two splits",
                )
            ]
        if not any(c.split for c in cases):
            return [
                Finding(
                    "patient leakage",
                    "ok",
                    f"{len(set(filter(None, patients)))} patients; dlkit splits by patient",
                )
            ]
        groups = [c.patient for c in cases]
        leaks = medical.leaking_groups(groups, [c.split for c in cases])
        if leaks:
            return [
                Finding(
                    "patient leakage",
                    "fatal",
                    self._leak_message(cases, groups, leaks),
                    "give all of a patient's rows the same split",
                )
            ]
        return [Finding("patient leakage", "ok", "no patient appears in two of the given splits")]

    def _check_contents(self, cases: list[Case], infos: dict, unreadable: list[str]) -> list[Finding]:
        """Read every scan (and mask): unreadable files, shape mismatches, mask labels, balance."""
        mismatched, bad_labels, values, empty = [], [], set(), 0
        for i, c in enumerate(cases):
            if i not in infos:
                continue
            try:
                scan = medical.read_scan(c.image)
                if not self.segmentation:
                    continue
                labels, stored = medical.read_mask(c.mask)
            except UserError as exc:
                unreadable.append(exc.message)
                continue
            mismatch = self._shape_mismatch(c, scan, labels, stored)
            if mismatch:
                mismatched.append(mismatch.message)
                continue
            try:
                vals = medical.mask_values(labels, c.mask)
            except UserError as exc:
                bad_labels.append(exc.message)
                continue
            values |= vals
            empty += vals <= {0}
        checks = [("files readable", unreadable)]
        if self.segmentation:
            checks += [("mask/image shapes", mismatched), ("mask labels", bad_labels)]
        found = []
        for name, problems in checks:
            if problems:
                more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
                found.append(
                    Finding(name, "fatal", f"{len(problems)} problem(s): " + "; ".join(problems[:3]) + more)
                )
            else:
                found.append(Finding(name, "ok", "all good"))
        if self.segmentation:
            shown = ", ".join(map(str, sorted(values)))
            found.append(
                Finding(
                    "label balance",
                    "info",
                    f"mask labels {shown}; {empty} of {len(cases)} masks are all background",
                )
            )
        else:
            counts = {lab: sum(c.label == lab for c in cases) for lab in sorted({c.label for c in cases})}
            rare = min(counts.values()) / len(cases) < 0.1
            found.append(
                Finding(
                    "label balance",
                    "warning" if rare else "ok",
                    ", ".join(f"{k}: {v}" for k, v in counts.items()),
                    "a label has under 10% of the scans: collect more, and read sensitivity and "
                    "specificity rather than accuracy"
                    if rare
                    else "",
                )
            )
        return found
