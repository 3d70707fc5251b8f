"""Face images in predict outputs, only when the user allows it (`report.show_faces=true`)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from dlkit.data.images import decode


def match_strips(records: list[dict], gallery, state: dict, out_dir: Path) -> None:
    """For each input: `<n>_<name>_match.png`, the input beside a gallery image of its best candidate
    (greyed out when rejected). Records gain `match_image`."""
    size, channels = state["image_size"], state["channels"]
    start = len(list(out_dir.glob("*_match.png")))
    for n, record in enumerate(records, start=start):
        probe = decode(Path(record["path"]), size, channels)
        if probe is None:
            continue
        best = gallery.images[gallery.persons.index(record["best_candidate"])]
        strip = torch.cat([probe, best], dim=2)
        if not record["accepted"]:
            strip = (strip.float() * 0.5 + 64).to(torch.uint8)
        array = strip.permute(1, 2, 0).squeeze(-1).numpy()
        name = f"{n:04d}_{Path(record['path']).stem}_match.png"
        Image.fromarray(array).save(out_dir / name)
        record["match_image"] = name
