"""Cases -> model-ready examples: the preprocessing state is fitted on train and applied to every split.

The state (JSON, in the run's preprocess/) holds the mode (2d/3d), channels, the model grid (size and
optional spacing), the intensity spec (CT window or percentile clipping, z-score), the classes (mask
labels with their scale 0/1 or 0/255, or label names and the positive one), counts per split and what
the baselines fitted on train. In 2D mode volumes become axial slices.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from dlkit_recipes.medical_imaging import baselines, preprocess, readers
from dlkit_recipes.medical_imaging.layout import Case, assign, groups_of, list_cases
from dlkit_recipes.medical_imaging.scans import Scan, ScanInfo, scan_kind
from torch.utils.data import Dataset

from dlkit import console
from dlkit.data.splits import SPLITS, indices
from dlkit.errors import UserError
from dlkit.recipe import RecipeData

AUTO_MAX_SIDE = {"2d": 128, "3d": 64}  # auto grid: the median training shape, scaled down to fit this


class ExampleSet(Dataset):
    """Preprocessed examples held in memory: {'image', 'mask' or 'label', 'id'}."""

    def __init__(
        self,
        images: list[torch.Tensor],
        targets: list,
        ids: list[str],
        target_key: str,
        augment: bool = False,
    ):
        self.images, self.targets, self.ids = images, targets, ids
        self.target_key, self.augment = target_key, augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        image, target = self.images[i].float(), self.targets[i]
        if self.augment:
            image, target = _augment(image, target, self.target_key == "mask")
        item = {"image": image, "id": self.ids[i]}
        item[self.target_key] = target.long() if self.target_key == "mask" else target
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


@dataclass
class Geometry:
    """What maps a prediction on the model grid back onto its scan."""

    scan: Scan
    mode: str
    spacing: list[float] | None

    def to_source(self, grid: torch.Tensor) -> torch.Tensor:
        """Labels (slices, *size) on the model grid -> labels in the scan's canonical (X, Y, Z) shape."""
        scan = self.scan
        if self.mode == "3d":
            return preprocess.from_grid(grid[0], scan.shape, scan.spacing, self.spacing)
        slices = [preprocess.from_grid(g, scan.shape[:2], scan.spacing[:2], self.spacing) for g in grid]
        return torch.stack(slices, dim=-1)


class InputSet(Dataset):
    """Predict inputs, read when asked (memory stays flat): {'image', 'id'}, plus 'geometry' for masks.

    For segmentation 'image' holds all of a scan's grids (its slices in 2D), so one item is one input.
    """

    def __init__(self, paths: list[Path], state: dict):
        self.paths, self.state = paths, state

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        path, state = self.paths[i], self.state
        scan = read_for_model(path, state)
        grids = model_images(scan, state)
        if state["task"] == "classification":
            return {"image": grids[0].float(), "id": str(path)}
        geometry = Geometry(scan, state["mode"], state["spacing"])
        return {"image": torch.stack(grids).float(), "id": str(path), "geometry": geometry}


# --- fitting the state -----------------------------------------------------------------------------
def pick_mode(cfg: dict, infos: list[ScanInfo]) -> str:
    if cfg["mode"] == "auto":
        return "3d" if any(i.is_volume for i in infos) else "2d"
    return cfg["mode"]


def check_fit(path: Path, info: ScanInfo, mode: str, task: str) -> None:
    if mode == "3d" and not info.is_volume:
        raise UserError(
            f"'{path}' is a 2D image ({info.shape[0]}x{info.shape[1]}), but mode is 3d",
            "set mode=2d (or auto) for images and slices",
        )
    if mode == "2d" and task == "classification" and info.is_volume:
        raise UserError(
            f"'{path}' is a volume ({'x'.join(map(str, info.shape))}) and 2d classification "
            "takes one image per label",
            "set mode=3d (or auto) to classify whole volumes",
        )


def fit_window(cfg: dict, train: list[Case]) -> list[float] | None:
    """The configured window; `auto` looks at a few training scans for Hounsfield units."""
    d = cfg["data"]
    name = d["window"]
    if name == "auto":
        ct = any(
            preprocess.looks_like_ct(readers.read_scan(c.image))
            for c in train[:5]
            if scan_kind(c.image) != "image"
        )
        name = "soft_tissue" if ct else "none"
        if ct:
            console.info(
                "scans are in Hounsfield units (CT): soft-tissue window -160..240 HU "
                "(data.window=lung/bone/brain/custom/none to change)"
            )
    return preprocess.window_range(name, d["window_level"], d["window_width"])


def fit_state(cfg: dict, mode: str, infos: list[ScanInfo], train: list[Case]) -> dict:
    d, m = cfg["data"], cfg["model"]
    dims = 2 if mode == "2d" else 3
    for key in ("size", "spacing"):
        value = d[key]
        if value and (len(value) != dims or any(not isinstance(v, (int, float)) or v <= 0 for v in value)):
            raise UserError(
                f"data.{key}={value} needs {dims} positive numbers in {mode} mode (or [] for auto)"
            )
    spacing = [float(v) for v in d["spacing"]] or None
    if d["size"]:
        size = [int(v) for v in d["size"]]
    else:
        shapes = [
            preprocess.spacing_shape(i.shape[:dims], i.spacing[:dims], spacing) if spacing else i.shape[:dims]
            for i in infos
        ]
        median = [statistics.median(s[a] for s in shapes) for a in range(dims)]
        scale = min(1.0, AUTO_MAX_SIDE[mode] / max(median))
        smallest = 2 ** (m["depth"] - 1)
        size = [max(smallest, int(round(v * scale))) for v in median]
    return {
        "task": cfg["task"],
        "mode": mode,
        "channels": max(i.channels for i in infos),
        "size": size,
        "spacing": spacing,
        "intensity": {
            "window": fit_window(cfg, train),
            "percentiles": [float(p) for p in d["percentiles"]] or None,
            "zscore": d["zscore"],
        },
    }


def fit_classes(cfg: dict, values: dict[Path, set[int]], notes: list[str]) -> dict:
    """Segmentation classes from the training masks (0/255 masks read as 0/1)."""
    union = set().union(*values.values()) if values else set()
    scale = 255 if union == {0, 255} else 1
    names = list(cfg["data"]["class_names"])
    k = len(names) if names else max(union, default=0) // scale + 1
    if k < 2:
        raise UserError(
            "the training masks hold only background (label 0)",
            "segmentation needs masks with at least one foreground label",
        )
    if not names:
        names = (
            ["background", "foreground"] if k == 2 else ["background"] + [f"class_{i}" for i in range(1, k)]
        )
    state = {"classes": [str(n) for n in names], "mask_scale": scale}
    for mask, vals in values.items():
        check_labels(vals, mask, state)
    unused = sorted(set(range(k)) - {v // scale for v in union})
    if unused:
        notes.append(f"mask label(s) {', '.join(map(str, unused))} never appear in the training masks")
    if scale == 255:
        notes.append("masks hold 0/255: read as background/foreground")
    return state


def fit_labels(cfg: dict, cases: list[Case]) -> dict:
    classes = sorted({c.label for c in cases})
    if len(classes) < 2:
        raise UserError(
            f"the training cases have {len(classes)} label(s)", "classification needs two or more"
        )
    wanted = cfg["data"]["positive_label"]
    if wanted and wanted not in classes:
        raise UserError(f"data.positive_label '{wanted}' is not a label (labels: {', '.join(classes)})")
    return {"classes": classes, "positive": classes.index(wanted) if wanted else len(classes) - 1}


def check_labels(values: set[int], mask: Path, state: dict) -> None:
    k, scale = len(state["classes"]), state["mask_scale"]
    for v in sorted(values):
        if v % scale or v // scale >= k:
            allowed = ", ".join(str(i * scale) for i in range(k))
            raise UserError(
                f"mask '{mask}' holds the label {v}, but the training masks use only {allowed}",
                "fix the mask, or name every label in data.class_names",
            )


def known_labels(cases: list[Case], state: dict, split: str) -> None:
    unknown = sorted({c.label for c in cases} - set(state["classes"]))
    if unknown:
        raise UserError(
            f"{split} data has labels the model was not trained on: {', '.join(unknown[:5])}",
            f"known labels: {', '.join(state['classes'])}",
        )


# --- applying it ---------------------------------------------------------------------------------
def read_for_model(path: Path, state: dict) -> Scan:
    """A scan with the channels the model takes (images are converted; other scans must match)."""
    scan = (
        readers.read_image(path, state["channels"]) if scan_kind(path) == "image" else readers.read_scan(path)
    )
    if scan.array.shape[0] != state["channels"]:
        raise UserError(
            f"'{path}' has {scan.array.shape[0]} channel(s), the model takes {state['channels']}",
            "give every scan the same channels (e.g. the same MRI sequences)",
        )
    return scan


def grids(array: np.ndarray, spacing: tuple, state: dict, labels: bool = False) -> list[torch.Tensor]:
    """(C, X, Y, Z) -> one tensor on the model grid (3d) or one per axial slice (2d)."""
    if state["mode"] == "3d":
        return [preprocess.to_grid(array, spacing, state["size"], state["spacing"], labels)]
    return [
        preprocess.to_grid(array[..., k], spacing[:2], state["size"], state["spacing"], labels)
        for k in range(array.shape[-1])
    ]


def model_images(scan: Scan, state: dict) -> list[torch.Tensor]:
    array = preprocess.normalise_intensity(scan.array, state["intensity"])
    return [g.to(torch.float16) for g in grids(array, scan.spacing, state)]


def shape_mismatch(case: Case, scan: Scan, labels: np.ndarray, stored: tuple) -> UserError | None:
    if labels.shape == scan.shape:
        return None
    return UserError(
        f"mask '{case.mask}' is {'x'.join(map(str, stored))} but its image '{case.image}' is "
        f"{'x'.join(map(str, scan.source_shape))}",
        "a mask must have its image's shape",
    )


def read_examples(
    cases: list[Case], state: dict, values: dict | None = None
) -> tuple[list[torch.Tensor], list, list[str]]:
    """Read, check and preprocess cases. Segmentation targets are label grids, divided by the mask scale,
    unless `values` is given (fitting): then they stay raw and each mask's label values go there."""
    images, targets, ids = [], [], []
    for case in cases:
        scan = read_for_model(case.image, state)
        grid = model_images(scan, state)
        images += grid
        ids += [str(case.image)] * len(grid)
        if state["task"] == "classification":
            targets += [state["classes"].index(case.label)] * len(grid)
            continue
        labels, stored = readers.read_mask(case.mask)
        mismatch = shape_mismatch(case, scan, labels, stored)
        if mismatch:
            raise mismatch
        found = readers.mask_values(labels, case.mask)
        if values is not None:
            values[case.mask] = found
        else:
            check_labels(found, case.mask, state)
            labels = labels / state["mask_scale"]
        targets += [g[0].to(torch.int16) for g in grids(labels[None], scan.spacing, state, True)]
    return images, targets, ids


def load(path: Path, cfg: dict, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
    """The recipe's `load_data`: list, split, fit the state on train (when not given) and read every split."""
    task = cfg["task"]
    key = "mask" if task == "segmentation" else "label"
    cases = list_cases(path, cfg)
    infos = [readers.probe(c.image) for c in cases]
    mode = state["mode"] if state else pick_mode(cfg, infos)
    for c, i in zip(cases, infos, strict=True):
        check_fit(c.image, i, mode, task)
    groups = groups_of(cases, infos)
    parts = indices(["test"] * len(cases) if evaluate_all else assign(cases, groups, cfg))
    notes: list[str] = []
    sets: dict[str, ExampleSet] = {}
    fresh = state is None
    if fresh:
        train = [cases[i] for i in parts["train"]]
        state = fit_state(cfg, mode, [infos[i] for i in parts["train"]], train)
        if task == "segmentation":
            values: dict = {}
            images, targets, ids = read_examples(train, state, values)
            state.update(fit_classes(cfg, values, notes))
            targets = [t // state["mask_scale"] for t in targets]
        else:
            state.update(fit_labels(cfg, train))
            images, targets, ids = read_examples(train, state)
        sets["train"] = ExampleSet(images, targets, ids, key, augment=cfg["data"]["augment"])
        state["baselines"] = baselines.fit(sets["train"], state)
    for split in SPLITS:
        if split in sets or (evaluate_all and split != "test"):
            continue
        chosen = [cases[i] for i in parts[split]]
        if task == "classification":
            known_labels(chosen, state, split)
        augment = split == "train" and cfg["data"]["augment"]
        sets[split] = ExampleSet(*read_examples(chosen, state), key, augment=augment)
    if fresh:
        state["counts"] = {s: len(sets[s]) for s in SPLITS}
        state["patients"] = {s: len({groups[i] for i in parts[s]}) for s in SPLITS}
    return RecipeData(sets.get("train"), sets.get("val"), sets.get("test"), state, notes=notes)
