"""Predict's side files: COCO results (with the image index they refer to) and images with boxes drawn.

Written into the folder the core picks, one chunk of records at a time: each chunk is appended.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dlkit.atomic import atomic_write_text

PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (170, 110, 40),
)
RESULTS, IMAGES, DRAWN = "coco_results.json", "coco_images.json", "drawn"


def coco_results(image_ids: list[int], detections: list[dict], category_ids: list[int]) -> list[dict]:
    """COCO results entries ({image_id, category_id, bbox xywh, score}) from pixel-xyxy detections.

    `detections[i]` holds 'boxes' (xyxy), 'labels' (class index, 0-based) and 'scores' for image i.
    """
    results = []
    for image_id, det in zip(image_ids, detections, strict=True):
        for (x1, y1, x2, y2), label, score in zip(det["boxes"], det["labels"], det["scores"], strict=True):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": category_ids[label],
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "score": round(float(score), 5),
                }
            )
    return results


def draw_detections(
    path: Path,
    boxes: list[list[float]],
    names: list[str],
    scores: list[float],
    palette: dict[str, tuple[int, int, int]],
    out: Path,
) -> None:
    """Save the image at `path` with its boxes and 'name score' captions drawn, as PNG at `out`."""
    from torchvision.utils import draw_bounding_boxes

    with Image.open(path) as img:
        pixels = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)
    if boxes:
        width = max(1, round(max(pixels.shape[1:]) / 200))
        pixels = draw_bounding_boxes(
            pixels,
            torch.tensor(boxes, dtype=torch.float32),
            labels=[f"{n} {s:.2f}" for n, s in zip(names, scores, strict=True)],
            colors=[palette[n] for n in names],
            width=width,
            fill_labels=True,
            label_colors="black",
        )
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(out)


def _read_json(path: Path, empty):
    return json.loads(path.read_text()) if path.is_file() else empty


def write_prediction_files(
    records: list[dict], classes: list[str], category_ids: list[int], out: Path, draw: bool
) -> None:
    """Append one chunk of predictions to `out`: coco_results.json, coco_images.json (the images its ids
    name, so pycocotools can load both) and, with `draw`, drawn/<image>.png.

    `records` are predict's (path, width, height, boxes in pixel xyxy, labels as names, scores); each
    gains its `image_id` (the file name's number when it is one, as in COCO, else the next free id)
    and, when drawn, the `drawn` file.
    """
    out.mkdir(parents=True, exist_ok=True)
    categories = [{"id": cid, "name": c} for c, cid in zip(classes, category_ids, strict=True)]
    index = _read_json(out / IMAGES, {"images": [], "annotations": [], "categories": categories})
    results = _read_json(out / RESULTS, [])
    used = {im["id"] for im in index["images"]}
    next_id = 1
    for r in records:
        stem = Path(r["path"]).stem
        image_id = int(stem) if stem.isdigit() and int(stem) not in used else None
        if image_id is None:
            while next_id in used:
                next_id += 1
            image_id = next_id
        used.add(image_id)
        r["image_id"] = image_id
        index["images"].append(
            {"id": image_id, "file_name": r["path"], "width": r["width"], "height": r["height"]}
        )
    if draw:
        palette = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(classes)}
        (out / DRAWN).mkdir(exist_ok=True)
        for r in records:
            name = Path(r["path"]).stem
            file = out / DRAWN / f"{name}.png"
            if file.exists():  # same file name from another folder or an earlier chunk
                file = out / DRAWN / f"{name}-{r['image_id']}.png"
            draw_detections(Path(r["path"]), r["boxes"], r["labels"], r["scores"], palette, file)
            r["drawn"] = str(file)
    label_index = {c: i for i, c in enumerate(classes)}
    detections = [
        {"boxes": r["boxes"], "labels": [label_index[c] for c in r["labels"]], "scores": r["scores"]}
        for r in records
    ]
    results += coco_results([r["image_id"] for r in records], detections, category_ids)
    atomic_write_text(out / RESULTS, json.dumps(results))
    atomic_write_text(out / IMAGES, json.dumps(index))
