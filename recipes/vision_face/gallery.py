"""`dlkit predict` for faces: embeddings, pair verification, and identification against a gallery.

A gallery is a folder with one sub-folder per enrolled person (their face images), or a `.json` file
of embeddings written earlier with `predict.save_gallery` (so faces need not be kept to enrol). A probe
is matched to the person whose gallery image is most similar; it is accepted when that similarity
reaches the threshold calibrated on validation pairs, and reported as "unknown" otherwise.
Gallery embeddings are written only to the file the user names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from dlkit.atomic import atomic_write_text
from dlkit.errors import UserError

from .data import gather, read_faces


@dataclass
class Gallery:
    """Enrolled persons: one name per image, and either the images (uint8) or their embeddings."""

    persons: list[str]
    images: list[torch.Tensor] | None = None
    embeddings: torch.Tensor | None = None

    @property
    def names(self) -> list[str]:
        return sorted(set(self.persons))


def load_gallery(path: str, state: dict, cropper=None) -> Gallery:
    """A gallery folder (decoded, faces cropped as in training) or a saved `.json` of embeddings."""
    where = Path(path).expanduser()
    if where.is_file() and where.suffix.lower() == ".json":
        try:
            saved = json.loads(where.read_text())
            persons = [str(p) for p in saved["persons"]]
            embeddings = torch.tensor(saved["embeddings"], dtype=torch.float32)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(
                f"predict.gallery '{where}' is not a gallery file ({exc})",
                "give a folder of person folders, or a file written by predict.save_gallery",
            ) from None
        if embeddings.dim() != 2 or len(embeddings) != len(persons) or not persons:
            raise UserError(
                f"predict.gallery '{where}' has {len(persons)} names for {len(embeddings)} embeddings"
            )
        return Gallery(persons, embeddings=embeddings)
    if not where.is_dir():
        raise UserError(
            f"predict.gallery '{where}' is not a folder or a .json gallery file",
            "give a folder with one sub-folder of face images per enrolled person",
        )
    found = gather(where)
    faces = read_faces(found.items, state["image_size"], state["channels"], cropper, keep_no_face=True)
    if not len(faces):
        raise UserError(f"no readable face images in the gallery '{where}'")
    return Gallery([faces.persons[i] for i in faces.labels], images=faces.images)


def save_gallery(gallery: Gallery, path: str) -> None:
    """Write the enrolled embeddings where the user asked (never anywhere else)."""
    where = Path(path).expanduser()
    if where.suffix.lower() != ".json":
        raise UserError(f"predict.save_gallery '{where}' must name a .json file")
    where.parent.mkdir(parents=True, exist_ok=True)
    rows = [[round(v, 6) for v in row] for row in gallery.embeddings.tolist()]
    atomic_write_text(where, json.dumps({"persons": gallery.persons, "embeddings": rows}))


def match(embeddings: torch.Tensor, gallery: Gallery, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, k) best per-person similarities (max over each person's images) and person indices."""
    names = gallery.names
    owner = torch.tensor([names.index(p) for p in gallery.persons], device=embeddings.device)
    sims = embeddings @ gallery.embeddings.to(embeddings.device).T
    per_person = torch.full((len(embeddings), len(names)), -2.0, device=embeddings.device)
    per_person = per_person.scatter_reduce(1, owner.expand(len(embeddings), -1), sims, reduce="amax")
    top = per_person.topk(min(top_k, len(names)), dim=1)
    return top.values, top.indices


class PairSet(Dataset):
    """Consecutive inputs as pairs to verify: {'image', 'image_b', 'id': 'a<newline>b'}."""

    def __init__(self, images: list[torch.Tensor], paths: list[Path], transform):
        if len(images) % 2:
            raise UserError(
                f"predict.pairs=true needs an even number of readable images (got {len(images)})",
                "give the images as pairs: a1 b1 a2 b2 ...",
            )
        self.images, self.paths, self.transform = images, paths, transform

    def __len__(self) -> int:
        return len(self.images) // 2

    def __getitem__(self, i: int) -> dict:
        a, b = 2 * i, 2 * i + 1
        return {
            "image": self.transform(self.images[a]),
            "image_b": self.transform(self.images[b]),
            "id": f"{self.paths[a]}\n{self.paths[b]}",
        }
