"""`dlkit check vision-face`: what makes face data misleading, beyond being readable.

- persons with too few images (a single image gives no same-person pair and no probe);
- the same file under two persons (a mislabelled or duplicated face: it makes a "different-person"
  pair of identical images), and repeats within a person (inflated same-person pairs);
- images without a detectable face, when `data.crop_faces` is on;
- extreme imbalance between persons (a few people dominating training and the pairs).
"""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter
from pathlib import Path

from dlkit.errors import UserError
from dlkit.recipe import Finding

from .data import check_split_sizes, gather, identity_splits

IMBALANCE = 10  # most images of one person / median images per person, before a warning


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError:
        return None


def face_findings(recipe, path: Path) -> list[Finding]:
    try:
        found = gather(path)
    except UserError:
        return []  # the shared check reports it as fatal
    per_person = Counter(person for _, person in found.items)
    out = [_split(recipe, path, found), _few_images(per_person, found.empty_folders)]
    out += [_duplicates(found.items), _balance(per_person)]
    if recipe.cfg["data"]["crop_faces"]:
        out.append(_faces_found(found.items, recipe))
    return [f for f in out if f is not None]


def _split(recipe, path: Path, found) -> Finding | None:
    d = recipe.cfg["data"]
    try:
        splits = identity_splits(
            found.items, found.given, d["val_fraction"], d["test_fraction"], recipe.cfg["seed"]
        )
        stats = check_split_sizes(path, found.items, splits)
    except UserError:
        return None  # the shared "data readable" check reports it as fatal
    parts = [
        f"{s} {v['persons']} persons ({v['single_image_persons']} with one image)" for s, v in stats.items()
    ]
    return Finding("persons per split", "ok", "no person in two splits (open set): " + "; ".join(parts))


def _few_images(per_person: Counter, empty: list[Path]) -> Finding:
    single = sorted(p for p, n in per_person.items() if n == 1)
    text = (
        f"{len(per_person)} persons; {len(single)} with a single image "
        "(kept as impostors and gallery distractors)"
    )
    if empty:
        text += f"; {len(empty)} empty person folder(s) skipped ({empty[0].name})"
    if len(single) > len(per_person) / 2:
        return Finding(
            "images per person", "warning", text, "most persons need 2+ images to train on and to be scored"
        )
    return Finding("images per person", "info" if single or empty else "ok", text)


def _duplicates(items: list[tuple[Path, str]]) -> Finding:
    owners: dict[str, list[tuple[Path, str]]] = {}
    for p, person in items:
        digest = _digest(p)
        if digest is not None:
            owners.setdefault(digest, []).append((p, person))
    across = [v for v in owners.values() if len({person for _, person in v}) > 1]
    within = sum(len(v) - 1 for v in owners.values() if len({person for _, person in v}) == 1)
    if across:
        (a, pa), (b, pb) = across[0][0], next(x for x in across[0] if x[1] != across[0][0][1])
        return Finding(
            "duplicate images",
            "warning",
            f"{len(across)} identical file(s) under two or more persons, e.g. '{a}' ({pa}) = '{b}' ({pb})"
            + (f"; {within} repeat(s) within a person" if within else ""),
            "remove the copy, or merge the persons if they are the same person",
        )
    if within:
        return Finding(
            "duplicate images", "info", f"{within} image(s) repeat within a person (easy same-person pairs)"
        )
    return Finding("duplicate images", "ok", "no identical files")


def _balance(per_person: Counter) -> Finding:
    counts = sorted(per_person.values())
    median = statistics.median(counts)
    top, most = per_person.most_common(1)[0]
    text = f"images per person: median {median:g}, most {most} ({top})"
    if most > IMBALANCE * median:
        return Finding(
            "person balance",
            "warning",
            text + f": over {IMBALANCE}x the median",
            "cap the largest persons' images, or use data.sampler=pk for person-balanced batches",
        )
    return Finding("person balance", "ok", text)


def _faces_found(items: list[tuple[Path, str]], recipe) -> Finding:
    import numpy as np
    from PIL import Image

    from .crop import FaceCropper, face_box

    cascade = FaceCropper().cascade
    missing = []
    for p, _ in items:
        try:
            with Image.open(p) as img:
                grey = np.asarray(img.convert("L"))
        except OSError:
            continue
        if face_box(grey, cascade) is None:
            missing.append(p)
    if not missing:
        return Finding("faces detected", "ok", f"a face found in each of {len(items)} images")
    what = "kept whole" if recipe.cfg["data"]["no_face"] == "keep" else "skipped"
    severity = "fatal" if len(missing) == len(items) else "warning"
    return Finding(
        "faces detected",
        severity,
        f"no face found in {len(missing)} of {len(items)} images ({what}), e.g. '{missing[0]}'",
        "turn data.crop_faces off for faces that are already cropped, or check these images",
    )
