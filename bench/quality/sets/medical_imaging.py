"""medical-imaging: brain tissue segmentation (background / grey matter / white matter) of a real brain.

Source: nilearn ships the MNI152 2009a symmetric template (`nilearn/datasets/data/`): an averaged T1
MRI of 152 adult brains (skull stripped, 1 mm, 197x233x189) with grey- and white-matter probability
maps. That is the one labelled medical scan a package carries (scikit-image, dipy, nibabel and pydicom
ship images without labels), so the two sets cut it two ways:

- `mni152-tissue-axial`: axial slices, `mni152-tissue-coronal`: coronal slices.

Both are resampled to 2 mm (2x2x2 mean; the usual MNI 2 mm grid), so a slice is ~100x117 and the label
of a voxel is the most probable of background, grey and white matter. Slices with under 2% tissue are
dropped. Each slice is a 2D NIfTI with its label map; the split is by blocks of 6 neighbouring slices
(train, train, val, train, test, train, ...) and the first slice of a block that changes split is left
out, so no slice has its direct neighbour in another split and every split covers the whole brain.

The hand-written peer is the one the issue measured against: a 3-level 2D U-Net (16 channels, batch
8, AdamW 3e-3, cross-entropy, 60 epochs, no augmentation), each slice z-scored, best epoch on
validation Dice; scored with dlkit's own Dice (per image and class, nnU-Net convention).
"""

from __future__ import annotations

from pathlib import Path

from common import QualitySet

BLOCK = 6
PATTERN = ["train", "train", "val", "train", "test", "train"]
MIN_TISSUE = 0.02


def _volumes():
    """T1 and labels (0 background, 1 grey, 2 white matter) on the 2 mm grid."""
    import importlib.resources

    import nibabel as nib
    import numpy as np

    data = importlib.resources.files("nilearn.datasets") / "data"

    def read(kind: str):
        image = nib.load(str(data / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz"))
        a = np.asarray(image.dataobj, dtype=np.float32)
        a = a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2, : a.shape[2] // 2 * 2]
        return a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2, a.shape[2] // 2, 2).mean((1, 3, 5))

    t1, gm, wm = read("t1"), read("gm") / 255, read("wm") / 255
    labels = np.stack([1 - gm - wm, gm, wm]).argmax(0).astype(np.uint8)
    return t1, labels


def _prepare(axis: int):
    def prepare(dest: Path) -> Path:
        import nibabel as nib
        import numpy as np

        t1, labels = _volumes()
        keep = [k for k in range(t1.shape[axis]) if (labels.take(k, axis) > 0).mean() >= MIN_TISSUE]
        affine = np.diag([2.0, 2.0, 1.0, 1.0])
        (dest / "images").mkdir(parents=True, exist_ok=True)
        (dest / "masks").mkdir(exist_ok=True)
        rows, previous = ["path,mask,split"], None
        for n, k in enumerate(keep):
            split = PATTERN[(n // BLOCK) % len(PATTERN)]
            if n % BLOCK == 0 and previous not in (None, split):
                previous = split
                continue  # a gap between blocks of different splits: neighbours do not leak
            previous = split
            name = f"slice_{k:03d}.nii.gz"
            nib.save(nib.Nifti1Image(t1.take(k, axis)[..., None], affine), dest / "images" / name)
            nib.save(nib.Nifti1Image(labels.take(k, axis)[..., None], affine), dest / "masks" / name)
            rows.append(f"images/{name},masks/{name},{split}")
        (dest / "labels.csv").write_text("\n".join(rows) + "\n")
        return dest

    return prepare


def handwritten(data: Path, seed: int) -> float:
    import csv

    import nibabel as nib
    import numpy as np
    import torch
    from dlkit_recipes.medical_imaging.metrics import ClassDice
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(seed)
    splits: dict[str, list] = {"train": [], "val": [], "test": []}
    for row in csv.DictReader(open(data / "labels.csv")):
        x = np.asarray(nib.load(str(data / row["path"])).dataobj, dtype=np.float32)[..., 0]
        y = np.asarray(nib.load(str(data / row["mask"])).dataobj)[..., 0]
        splits[row["split"]].append(((x - x.mean()) / x.std(), y))
    sets = {
        s: (
            torch.tensor(np.stack([a for a, _ in v]))[:, None],
            torch.tensor(np.stack([b for _, b in v])).long(),
        )
        for s, v in splits.items()
    }

    def block(cin, cout):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )

    class UNet(nn.Module):
        def __init__(self, c=16, k=3):
            super().__init__()
            self.d1, self.d2, self.d3 = block(1, c), block(c, 2 * c), block(2 * c, 4 * c)
            self.u2, self.u1 = nn.ConvTranspose2d(4 * c, 2 * c, 2, 2), nn.ConvTranspose2d(2 * c, c, 2, 2)
            self.c2, self.c1, self.head = block(4 * c, 2 * c), block(2 * c, c), nn.Conv2d(c, k, 1)

        def forward(self, x):
            h, w = x.shape[-2:]
            x = F.pad(x, (0, -w % 4, 0, -h % 4))
            a = self.d1(x)
            b = self.d2(F.max_pool2d(a, 2))
            c = self.d3(F.max_pool2d(b, 2))
            b = self.c2(torch.cat([self.u2(c), b], 1))
            return self.head(self.c1(torch.cat([self.u1(b), a], 1)))[..., :h, :w]

    def dice(model, split):
        model.eval()
        metric = ClassDice(3)
        with torch.no_grad():
            x, y = sets[split]
            for i in range(0, len(x), 16):
                metric.update(model(x[i : i + 16]).argmax(1), y[i : i + 16])
        return float(metric.compute())

    model = UNet()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, y = sets["train"]
    best, best_state = -1.0, None
    for _ in range(60):
        model.train()
        for idx in torch.randperm(len(x)).split(8):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = dice(model, "val")
        if score > best:
            best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return dice(model, "test")


SOURCE = "nilearn: MNI152 2009a T1 template + grey/white matter maps (nilearn/datasets/data), 2 mm"
SETS = [
    QualitySet(
        name=f"mni152-tissue-{view}",
        recipe="medical-imaging",
        source=f"{SOURCE}, {view} slices",
        metric="dice",
        mode="max",
        prepare=_prepare(axis),
        handwritten=handwritten,
    )
    for view, axis in (("axial", 2), ("coronal", 1))
]
