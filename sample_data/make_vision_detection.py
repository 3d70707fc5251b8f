"""Generate the small synthetic object-detection sample set used by dlkit.

Each scene is a 128x128 RGB JPEG with 0-4 shapes (circle, triangle, square, star) on a
textured background (low-frequency colour noise, stripes or a gradient, plus grain). Shape
colour, size (boxes of about 14-48 px), position and rotation are drawn at random and
independently of the class, so only the geometry tells the classes apart. Every box is the
tight bounding box of the shape as drawn, in COCO `[x, y, width, height]` pixels. A few scenes
hold no shapes at all (negatives), as real detection data does.

Output layout::

    OUT/images/scene_0001.jpg ...
    OUT/train.json  OUT/val.json  OUT/test.json     (COCO: images, annotations, categories)

Usage::

    python sample_data/make_vision_detection.py [--out DIR] [--seed N] [--scenes N]

Only numpy and Pillow are needed; the output is deterministic for a given seed. A rerun
replaces `images/` and the three JSON files and leaves anything else in OUT (README.md) alone.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES: tuple[str, ...] = ("circle", "triangle", "square", "star")
SIZE = 128
SUPERSAMPLE = 4
SPLITS = {"train": 0.7, "val": 0.15, "test": 0.15}
NEGATIVE_SHARE = 0.05
DEFAULT_OUT = Path(__file__).resolve().parent / "vision_detection"


def smooth_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """SIZE x SIZE x 3 values in [-1, 1] varying over about `cells` blobs per side."""
    grid = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.uint8)
    big = Image.fromarray(grid, "RGB").resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    return np.asarray(big, dtype=np.float64) / 127.5 - 1


def make_background(rng: np.random.Generator) -> np.ndarray:
    """A textured background: a base colour plus blobs, stripes or a gradient, and grain."""
    base = rng.uniform(40, 215, size=3)
    kind = rng.integers(3)
    if kind == 0:
        texture = smooth_noise(rng, int(rng.integers(3, 9))) * rng.uniform(25, 55)
    elif kind == 1:
        angle, period = rng.uniform(0, math.pi), rng.uniform(6, 20)
        ys, xs = np.mgrid[0:SIZE, 0:SIZE]
        wave = np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period)
        texture = wave[..., None] * rng.uniform(10, 30, size=3)
    else:
        ys, xs = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1) * 2 - 1
        angle = rng.uniform(0, 2 * math.pi)
        ramp = xs * math.cos(angle) + ys * math.sin(angle)
        texture = ramp[..., None] * rng.uniform(-40, 40, size=3)
    grain = rng.normal(0, rng.uniform(3, 9), size=(SIZE, SIZE, 3))
    return np.clip(base + texture + grain, 0, 255)


def polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    corners = {"triangle": 3, "square": 4, "star": 10}[shape]
    points = []
    for k in range(corners):
        radius = r * (0.45 if shape == "star" and k % 2 else 1.0)
        a = 2 * math.pi * k / corners + angle
        points.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    return points


def shape_mask(shape: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Anti-aliased alpha mask (SIZE x SIZE, 0-1) of one shape, drawn at 4x and downsampled."""
    s = SUPERSAMPLE
    mask = Image.new("L", (SIZE * s, SIZE * s), 0)
    draw = ImageDraw.Draw(mask)
    if shape == "circle":
        draw.ellipse(((cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s), fill=255)
    else:
        draw.polygon([(x * s, y * s) for x, y in polygon(shape, cx, cy, r, angle)], fill=255)
    return np.asarray(mask.resize((SIZE, SIZE), Image.Resampling.BOX), dtype=np.float64) / 255


def tight_box(alpha: np.ndarray) -> list[float] | None:
    """COCO [x, y, w, h] of the pixels the shape covers at least half of."""
    ys, xs = np.nonzero(alpha >= 0.5)
    if len(xs) == 0:
        return None
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def contrasting_colour(rng: np.random.Generator, around: np.ndarray) -> np.ndarray:
    for _ in range(100):
        colour = rng.uniform(0, 255, size=3)
        if np.linalg.norm(colour - around) > 110:
            return colour
    return 255 - around


def make_scene(rng: np.random.Generator, objects: int) -> tuple[Image.Image, list[tuple[int, list[float]]]]:
    """One scene and its (class index, COCO box) pairs; shapes overlap little (IoU < 0.1)."""
    pixels = make_background(rng)
    boxes: list[tuple[int, list[float]]] = []
    for _ in range(objects * 20):
        if len(boxes) == objects:
            break
        cls = int(rng.integers(len(CLASSES)))
        r = rng.uniform(7, 24)
        cx, cy = rng.uniform(r * 0.6, SIZE - r * 0.6, size=2)  # a shape may be cut by the border
        alpha = shape_mask(CLASSES[cls], cx, cy, r, rng.uniform(0, 2 * math.pi))
        box = tight_box(alpha)
        if box is None or box[2] < 6 or box[3] < 6 or any(iou(box, b) > 0.1 for _, b in boxes):
            continue
        local = pixels[int(box[1]) : int(box[1] + box[3]), int(box[0]) : int(box[0] + box[2])].mean(
            axis=(0, 1)
        )
        colour = contrasting_colour(rng, local)
        pixels = pixels * (1 - alpha[..., None]) + colour * alpha[..., None]
        boxes.append((cls, box))
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), "RGB"), boxes


def split_of(index: int, total: int) -> str:
    """Contiguous 70/15/15 split by scene number (scenes are independent draws)."""
    n_train = round(total * SPLITS["train"])
    n_val = round(total * SPLITS["val"])
    return "train" if index < n_train else "val" if index < n_train + n_val else "test"


def generate(out: Path, seed: int = 0, scenes: int = 240) -> dict[str, int]:
    """Write images/ and train/val/test COCO files to `out`; return the number of scenes per split."""
    rng = np.random.default_rng(seed)
    shutil.rmtree(out / "images", ignore_errors=True)
    (out / "images").mkdir(parents=True)
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES)]
    coco = {s: {"images": [], "annotations": [], "categories": categories} for s in SPLITS}
    ann_id = 1
    for i in range(scenes):
        objects = 0 if rng.random() < NEGATIVE_SHARE else int(rng.integers(1, 5))
        image, boxes = make_scene(rng, objects)
        name = f"scene_{i + 1:04d}.jpg"
        image.save(out / "images" / name, quality=90)
        split = coco[split_of(i, scenes)]
        split["images"].append({"id": i + 1, "file_name": name, "width": SIZE, "height": SIZE})
        for cls, box in boxes:
            split["annotations"].append(
                {
                    "id": ann_id,
                    "image_id": i + 1,
                    "category_id": cls + 1,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
            ann_id += 1
    for s, content in coco.items():
        (out / f"{s}.json").write_text(json.dumps(content, indent=1) + "\n")
    return {s: len(c["images"]) for s, c in coco.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output folder (default: vision_detection/ beside this script)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--scenes", type=int, default=240, help="number of scenes (default: 240)")
    args = parser.parse_args(argv)
    if args.scenes < 10:
        parser.error("--scenes must be at least 10")
    counts = generate(args.out, args.seed, args.scenes)
    print(
        f"wrote {sum(counts.values())} scenes to {args.out} "
        f"({counts['train']}/{counts['val']}/{counts['test']} train/val/test)"
    )


if __name__ == "__main__":
    main()
