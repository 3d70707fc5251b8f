"""vision-classification on real images that packages ship: handwritten digits and printed glyphs.

- `digits`: scikit-learn's `load_digits` (1,797 handwritten digits from UCI, 8x8 grey, 10 classes),
  upscaled to 32 px (bicubic), a fixed random 65/15/20 train/val/test split.
- `glyphs`: the 26 lowercase letters rendered from the 21 text fonts matplotlib ships (DejaVu, STIX,
  Computer Modern: serif, sans, mono, bold, italic), three renderings per font and letter with a
  small random size, shift and rotation, 32 px grey; same fixed split. Mirror pairs (b/d, p/q) make
  it orientation-bound, like text and digits.

Both are written as `DIR/{train,val,test}/<class>/<n>.png`, the split-folder layout dlkit reads.
The hand-written peer is what MEASURED.md timed: timm `resnet10t` from scratch, AdamW 2e-3, batch 64,
10 epochs, no augmentation, the best epoch on val.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import QualitySet, assign_splits

SIZE = 32


def _write(dest: Path, images: list[np.ndarray], labels: list[str]) -> Path:
    """uint8 (SIZE, SIZE) arrays -> DIR/<split>/<label>/<n>.png under a fixed split."""
    from PIL import Image

    root = dest / "images"
    for n, (img, label, split) in enumerate(zip(images, labels, assign_splits(len(images)), strict=True)):
        folder = root / split / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, mode="L").save(folder / f"{n:05d}.png")
    return root


def prepare_digits(dest: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [
        np.asarray(Image.fromarray((img * 255 / 16).astype(np.uint8)).resize((SIZE, SIZE), Image.BICUBIC))
        for img in digits.images
    ]
    return _write(dest, images, [str(t) for t in digits.target])


GLYPH_FONTS = [
    *(f"DejaVu{family}{style}.ttf" for family in ("Sans", "Serif") for style in ("", "-Bold")),
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    *(f"DejaVuSansMono{style}.ttf" for style in ("", "-Bold", "-Oblique", "-BoldOblique")),
    *(f"STIXGeneral{style}.ttf" for style in ("", "Bol", "Italic", "BolIta")),
    *(f"cm{face}10.ttf" for face in ("r", "b", "ss", "ti", "tt")),
]
LETTERS = "abcdefghijklmnopqrstuvwxyz"
RENDERINGS = 3


def _glyph(font_path: Path, char: str, rng: np.random.Generator) -> np.ndarray:
    """One letter, black on white, drawn large, jittered (size, shift, rotation), shrunk to SIZE."""
    from PIL import Image, ImageDraw, ImageFont

    big = SIZE * 4
    font = ImageFont.truetype(str(font_path), int(big * rng.uniform(0.55, 0.75)))
    canvas = Image.new("L", (big, big), 255)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), char, font=font)
    shift = rng.uniform(-0.08, 0.08, 2) * big
    xy = ((big - (right - left)) / 2 - left + shift[0], (big - (bottom - top)) / 2 - top + shift[1])
    draw.text(xy, char, font=font, fill=0)
    canvas = canvas.rotate(rng.uniform(-10, 10), Image.BICUBIC, fillcolor=255)
    return np.asarray(canvas.resize((SIZE, SIZE), Image.LANCZOS))


def prepare_glyphs(dest: Path) -> Path:
    import matplotlib

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    rng = np.random.default_rng(0)
    images, labels = [], []
    for name in GLYPH_FONTS:
        for char in LETTERS:
            for _ in range(RENDERINGS):
                images.append(_glyph(fonts / name, char, rng))
                labels.append(char)
    return _write(dest, images, labels)


def handwritten_resnet(data: Path, seed: int) -> float:
    """timm resnet10t from scratch on the split folders; test accuracy at the best val epoch."""
    import copy

    import timm
    import torch
    from PIL import Image

    torch.manual_seed(seed)
    classes = sorted(p.name for p in (data / "train").iterdir())

    def load(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        files = [(f, i) for i, c in enumerate(classes) for f in sorted((data / split / c).glob("*.png"))]
        x = np.stack([np.asarray(Image.open(f).convert("L"), dtype=np.float32) / 255 for f, _ in files])
        return torch.from_numpy(x).unsqueeze(1), torch.tensor([i for _, i in files])

    (xtr, ytr), (xva, yva), (xte, yte) = load("train"), load("val"), load("test")
    mean, std = xtr.mean(), xtr.std()
    xtr, xva, xte = ((x - mean) / std for x in (xtr, xva, xte))
    model = timm.create_model("resnet10t", num_classes=len(classes), in_chans=1)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)

    def accuracy(x: torch.Tensor, y: torch.Tensor) -> float:
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(x[i : i + 256]).argmax(1) for i in range(0, len(x), 256)])
        return float((pred == y).float().mean())

    best, best_state = -1.0, None
    for _ in range(10):
        model.train()
        for idx in torch.randperm(len(xtr)).split(64):
            loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = accuracy(xva, yva)
        if acc > best:
            best, best_state = acc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return accuracy(xte, yte)


SETS = [
    QualitySet(
        name="digits",
        recipe="vision-classification",
        source="scikit-learn: sklearn.datasets.load_digits (UCI handwritten digits, 8x8 -> 32 px)",
        metric="accuracy",
        mode="max",
        prepare=prepare_digits,
        handwritten=handwritten_resnet,
    ),
    QualitySet(
        name="glyphs",
        recipe="vision-classification",
        source="matplotlib: mpl-data/fonts/ttf (DejaVu, STIX, Computer Modern), 26 lowercase letters",
        metric="accuracy",
        mode="max",
        prepare=prepare_glyphs,
        handwritten=handwritten_resnet,
    ),
]
