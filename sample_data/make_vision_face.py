"""Generate the small synthetic face data set used by dlkit's `vision-face` recipe.

Every identity is a fixed set of facial traits: head shape and size, skin, hair and eye colour, hair
line and style, eye spacing and size, brow shape, nose length and width, mouth width and lip colour.
Every image of that person re-draws the face with jitter a face recogniser has to ignore: head pose
(yaw shifts the features sideways and narrows the far half, roll rotates, pitch moves them up or
down), scale and position, expression (smile and open eyes), lighting (a directional gradient and
overall brightness) and a random background, plus sensor noise and some blur. Backgrounds and
lighting are drawn independently of the person, so raw pixels are a weak cue and the traits are the
strong one.

Output layout (one folder per person, as the recipe reads it)::

    OUT/person_001/person_001_01.jpg ...   (48x48 RGB JPEG)

Most people have several images; a few have exactly one (for gallery and impostor use).

Usage::

    python sample_data/make_vision_face.py [--out DIR] [--seed N] [--people N] [--singles N]

Only numpy and Pillow are needed. The output is deterministic for a given seed. On rerun every
`person_*` folder under OUT is deleted and recreated; anything else there (README.md) is kept.
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

IMAGE_SIZE = 48
SUPERSAMPLE = 4  # drawn at 4x, then downsampled (anti-aliasing)
DEFAULT_OUT = Path(__file__).resolve().parent / "vision_face"
SKIN = np.array(
    [[255, 224, 196], [241, 194, 160], [224, 172, 125], [198, 134, 90], [141, 85, 50], [92, 56, 36]]
)
HAIR = np.array([[20, 16, 14], [70, 45, 30], [120, 80, 40], [200, 160, 90], [150, 60, 30], [130, 130, 130]])
EYES = np.array([[60, 40, 25], [40, 90, 150], [70, 120, 60], [30, 30, 30], [110, 80, 50]])


def identity(rng: np.random.Generator) -> dict:
    """One person's traits (fractions of the image side unless said otherwise)."""
    return {
        "head_w": rng.uniform(0.27, 0.36),
        "head_h": rng.uniform(0.36, 0.45),
        "skin": SKIN[rng.integers(len(SKIN))] + rng.normal(0, 10, 3),
        "hair": HAIR[rng.integers(len(HAIR))] + rng.normal(0, 12, 3),
        "hair_line": rng.uniform(0.05, 0.35),  # how far the hair comes down the forehead
        "hair_style": int(rng.integers(3)),  # 0 short, 1 long at the sides, 2 bald top with sides
        "eye_colour": EYES[rng.integers(len(EYES))] + rng.normal(0, 8, 3),
        "eye_gap": rng.uniform(0.13, 0.22),
        "eye_size": rng.uniform(0.025, 0.05),
        "eye_y": rng.uniform(-0.1, 0.0),
        "brow_tilt": rng.uniform(-0.35, 0.35),
        "brow_weight": rng.uniform(0.008, 0.025),
        "nose_len": rng.uniform(0.07, 0.16),
        "nose_w": rng.uniform(0.02, 0.05),
        "mouth_w": rng.uniform(0.1, 0.22),
        "mouth_y": rng.uniform(0.15, 0.24),
        "lips": np.array([160, 70, 70]) + rng.normal(0, 20, 3),
        "beard": bool(rng.random() < 0.2),
        "glasses": bool(rng.random() < 0.2),
    }


def _colour(c: np.ndarray, light: float = 1.0) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(c * light, 0, 255))


def render(person: dict, rng: np.random.Generator, size: int = IMAGE_SIZE) -> Image.Image:
    """One image of `person` under a random pose, expression, lighting and background."""
    big = size * SUPERSAMPLE
    background = rng.integers(20, 236, size=3)
    img = Image.new("RGB", (big, big), tuple(int(v) for v in background))
    draw = ImageDraw.Draw(img)
    scale = rng.uniform(0.88, 1.12) * big
    cx, cy = big / 2 + rng.normal(0, 0.04) * big, big / 2 + rng.normal(0, 0.04) * big
    yaw, pitch = rng.uniform(-0.35, 0.35), rng.normal(0, 0.03)
    smile, eyes_open = rng.uniform(-0.3, 1.0), rng.uniform(0.5, 1.0)
    light = rng.uniform(0.75, 1.2)

    def at(x: float, y: float) -> tuple[float, float]:
        """Face coordinates (fractions, 0 = the face centre) -> pixels, with yaw narrowing the far side."""
        squash = 1 - 0.35 * abs(yaw) * (1 if x * yaw > 0 else 0)
        return cx + (x * squash + yaw * 0.18) * scale, cy + (y + pitch) * scale

    def ellipse(x: float, y: float, w: float, h: float, fill) -> None:
        (x0, y0), (x1, y1) = at(x - w, y - h), at(x + w, y + h)
        draw.ellipse([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], fill=fill)

    hw, hh = person["head_w"], person["head_h"]
    hair, skin = _colour(person["hair"], light), _colour(person["skin"], light)
    if person["hair_style"] == 1:
        ellipse(0, 0.05, hw * 1.18, hh * 1.12, hair)
    ellipse(0, 0, hw, hh, skin)
    top = -hh + person["hair_line"] * hh
    if person["hair_style"] in (0, 1):
        ellipse(0, top - 0.05, hw * 1.02, 0.14 + person["hair_line"] * 0.12, hair)
        ellipse(0, 0.02, hw * 0.92, hh * 0.85, skin)  # the face in front of the hair
    else:
        ellipse(-hw, -0.05, 0.06, 0.12, hair)
        ellipse(hw, -0.05, 0.06, 0.12, hair)
    if person["beard"]:
        ellipse(0, hh * 0.55, hw * 0.7, hh * 0.4, hair)
    gap, ey, es = person["eye_gap"] / 2, person["eye_y"], person["eye_size"]
    for side in (-1, 1):
        ellipse(side * gap, ey, es * 1.5, es * eyes_open, (240, 240, 240))
        ellipse(side * gap, ey, es * 0.7, es * 0.7 * eyes_open, _colour(person["eye_colour"], light))
        tilt = person["brow_tilt"] * side
        (x0, y0), (x1, y1) = (
            at(side * gap - es * 1.6, ey - es * 2 - tilt * 0.03),
            at(side * gap + es * 1.6, ey - es * 2 + tilt * 0.03),
        )
        draw.line([(x0, y0), (x1, y1)], fill=hair, width=max(1, int(person["brow_weight"] * scale)))
        if person["glasses"]:
            (x0, y0), (x1, y1) = (
                at(side * gap - es * 2.2, ey - es * 1.8),
                at(side * gap + es * 2.2, ey + es * 1.8),
            )
            draw.rectangle([min(x0, x1), y0, max(x0, x1), y1], outline=(30, 30, 30), width=max(1, big // 60))
    nose_top, nose_tip = at(0, ey + 0.02), at(0, ey + 0.02 + person["nose_len"])
    left, right = (
        at(-person["nose_w"], ey + 0.02 + person["nose_len"]),
        at(person["nose_w"], ey + 0.02 + person["nose_len"]),
    )
    draw.polygon([nose_top, left, nose_tip, right], fill=_colour(person["skin"] * 0.8, light))
    mw, my = person["mouth_w"] / 2, person["mouth_y"]
    curve = smile * 0.04
    mouth = [at(-mw, my), at(0, my + curve), at(mw, my), at(0, my + curve * 0.3 + 0.015)]
    draw.polygon(mouth, fill=_colour(person["lips"], light))
    img = img.rotate(
        math.degrees(rng.normal(0, 0.12)),
        resample=Image.BILINEAR,
        center=(cx, cy),
        fillcolor=tuple(int(v) for v in background),
    )
    img = img.resize((size, size), Image.LANCZOS)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    arr = np.asarray(img, dtype=np.float64)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    shade = 1 + rng.uniform(0.1, 0.35) * (xs * math.cos(angle) + ys * math.sin(angle))
    arr = arr * shade[..., None] + rng.normal(0, 4, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def generate(
    out: Path, seed: int = 0, people: int = 72, singles: int = 8, per_person: tuple[int, int] = (6, 12)
) -> int:
    """Write `people` persons with `per_person` images each (inclusive range) and `singles` persons with one.

    Returns the number of images written."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("person_*"):
        if old.is_dir():
            shutil.rmtree(old)
    rng = np.random.default_rng(seed)
    written = 0
    for n in range(people + singles):
        person = identity(rng)
        count = 1 if n >= people else int(rng.integers(per_person[0], per_person[1] + 1))
        folder = out / f"person_{n + 1:03d}"
        folder.mkdir()
        for k in range(count):
            render(person, rng).save(folder / f"{folder.name}_{k + 1:02d}.jpg", quality=90)
            written += 1
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--people", type=int, default=72, help="persons with several images")
    parser.add_argument("--singles", type=int, default=8, help="persons with a single image")
    args = parser.parse_args(argv)
    n = generate(args.out, args.seed, args.people, args.singles)
    print(f"wrote {n} images of {args.people + args.singles} persons to {args.out}")


if __name__ == "__main__":
    main()
