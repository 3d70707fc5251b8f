"""Generate the small synthetic image-classification sample set used by dlkit.

Each image is a 32x32 RGB PNG showing one shape (circle, square, triangle,
cross, star or ring) on a noisy, gently graded background. Shape colour,
background colour, size, position, rotation and blur are all drawn at random
and independently of the class, so the class can only be recovered from the
shape's geometry (learnable by a small CNN, not by mean colour).

Output layout::

    OUT/train/<class>/<class>_0001.png
    OUT/val/<class>/...
    OUT/test/<class>/...

Usage::

    python sample_data/make_vision_classification.py [--out DIR] [--seed N] [--per-class N]

Only numpy and Pillow are needed. The output is deterministic for a given
seed. On rerun the train/val/test folders under OUT are deleted and recreated;
anything else in OUT (such as README.md) is kept.
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "star", "ring")
SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGE_SIZE = 32
SUPERSAMPLE = 4  # shapes are drawn at 4x resolution, then downsampled (anti-aliasing)
DEFAULT_OUT = Path(__file__).resolve().parent / "vision_classification"

Point = tuple[float, float]


def split_counts(per_class: int) -> dict[str, int]:
    """Split ``per_class`` images into train/val/test at roughly 70/15/15."""
    val = test = round(per_class * 0.15)
    return {"train": per_class - val - test, "val": val, "test": test}


def luminance(rgb: np.ndarray) -> float:
    """Approximate perceived brightness (0-255) of an RGB colour."""
    return float(rgb @ np.array([0.299, 0.587, 0.114]))


def pick_shape_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """Pick a random colour that clearly stands out against ``background``."""
    for _ in range(200):
        colour = rng.integers(0, 256, size=3).astype(np.float64)
        distance = float(np.linalg.norm(colour - background))
        contrast = abs(luminance(colour) - luminance(background))
        if distance >= 120 and contrast >= 40:
            return colour
    return 255.0 - background  # fallback: the complementary colour


def make_background(rng: np.random.Generator, size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(image, base_colour)``: a random colour with a mild linear gradient."""
    base = rng.integers(0, 256, size=3).astype(np.float64)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1  # coordinates in [-1, 1]
    ramp = xs * math.cos(angle) + ys * math.sin(angle)  # in about [-1.4, 1.4]
    strength = rng.uniform(-25, 25, size=3)  # per-channel gradient amplitude
    image = base + ramp[..., None] * strength
    return np.clip(image, 0, 255), base


def rotate(points: list[Point], angle: float, centre: Point) -> list[Point]:
    """Rotate ``points`` (given relative to the origin) by ``angle`` and move them to ``centre``."""
    c, s = math.cos(angle), math.sin(angle)
    cx, cy = centre
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


def regular_polygon(n: int, radius: float) -> list[Point]:
    """Vertices of a regular ``n``-gon with circumradius ``radius``, centred on the origin."""
    return [
        (
            radius * math.cos(2 * math.pi * k / n - math.pi / 2),
            radius * math.sin(2 * math.pi * k / n - math.pi / 2),
        )
        for k in range(n)
    ]


def star_points(radius: float, inner_ratio: float = 0.45) -> list[Point]:
    """Vertices of a five-pointed star centred on the origin."""
    points = []
    for k in range(10):
        r = radius if k % 2 == 0 else radius * inner_ratio
        a = math.pi * k / 5 - math.pi / 2
        points.append((r * math.cos(a), r * math.sin(a)))
    return points


def cross_points(radius: float, arm_ratio: float = 0.34) -> list[Point]:
    """Vertices of a plus sign whose arms reach ``radius`` from the centre."""
    r, w = radius, radius * arm_ratio
    return [
        (-w, -r),
        (w, -r),
        (w, -w),
        (r, -w),
        (r, w),
        (w, w),
        (w, r),
        (-w, r),
        (-w, w),
        (-r, w),
        (-r, -w),
        (-w, -w),
    ]


def draw_shape(shape: str, centre: Point, radius: float, angle: float, size: int) -> Image.Image:
    """Draw ``shape`` as a white-on-black ``L`` mask of ``size`` x ``size`` pixels."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    cx, cy = centre
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    elif shape == "ring":
        inner = radius * 0.55
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
        draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=0)
    elif shape == "square":
        draw.polygon(rotate(regular_polygon(4, radius), angle, centre), fill=255)
    elif shape == "triangle":
        draw.polygon(rotate(regular_polygon(3, radius), angle, centre), fill=255)
    elif shape == "cross":
        draw.polygon(rotate(cross_points(radius), angle, centre), fill=255)
    elif shape == "star":
        draw.polygon(rotate(star_points(radius), angle, centre), fill=255)
    else:
        raise ValueError(f"unknown shape: {shape!r}")
    return mask


def make_image(shape: str, rng: np.random.Generator, size: int = IMAGE_SIZE) -> Image.Image:
    """Render one random example of ``shape`` as a ``size`` x ``size`` RGB image."""
    background, base = make_background(rng, size)
    colour = pick_shape_colour(rng, base)

    radius = rng.uniform(0.6, 0.95) * size / 2  # shape spans ~60-95% of the image
    margin = radius * 0.85  # keep the shape fully or mostly inside
    centre = (rng.uniform(margin, size - margin), rng.uniform(margin, size - margin))
    angle = rng.uniform(0, 2 * math.pi)

    big = size * SUPERSAMPLE
    mask = draw_shape(
        shape, (centre[0] * SUPERSAMPLE, centre[1] * SUPERSAMPLE), radius * SUPERSAMPLE, angle, big
    )
    alpha = np.asarray(mask.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64) / 255
    pixels = background * (1 - alpha[..., None]) + colour * alpha[..., None]

    image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), "RGB")
    if rng.random() < 0.15:  # slight blur on some images
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.6)))

    noise = rng.normal(0, rng.uniform(2, 6), size=(size, size, 3))
    noisy = np.asarray(image, dtype=np.float64) + noise
    return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8), "RGB")


def reset_splits(out: Path) -> None:
    """Delete and recreate OUT/<split>/<class>/ folders, leaving other files in OUT alone."""
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        shutil.rmtree(out / split, ignore_errors=True)
        for name in CLASSES:
            (out / split / name).mkdir(parents=True)


def generate(out: Path, seed: int, per_class: int) -> int:
    """Write the whole data set to ``out``; return the number of images written."""
    rng = np.random.default_rng(seed)
    counts = split_counts(per_class)
    reset_splits(out)
    written = 0
    for name in CLASSES:
        index = 1  # numbering runs across splits so file names are unique per class
        for split in SPLITS:
            for _ in range(counts[split]):
                image = make_image(name, rng)
                image.save(out / split / name / f"{name}_{index:04d}.png", optimize=True)
                index += 1
                written += 1
    return written


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--per-class",
        type=int,
        default=160,
        help="images per class, split ~70/15/15 into train/val/test (default: 160)",
    )
    args = parser.parse_args(argv)
    if args.per_class < 3:
        parser.error("--per-class must be at least 3")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    written = generate(args.out, args.seed, args.per_class)
    counts = split_counts(args.per_class)
    print(
        f"wrote {written} images to {args.out} "
        f"({len(CLASSES)} classes x {counts['train']}/{counts['val']}/{counts['test']} train/val/test)"
    )


if __name__ == "__main__":
    main()
