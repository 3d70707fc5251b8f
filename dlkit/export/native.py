"""Native formats shared by recipes: a timm checkpoint that `timm.create_model` loads back."""

from __future__ import annotations

from pathlib import Path

import torch


def save_state_dict(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))


def save_timm(model: torch.nn.Module, name: str, num_classes: int, in_chans: int, folder: Path) -> dict:
    """Weights as model.safetensors, loadable with timm alone (the JSON carries the call)."""
    save_state_dict(model, folder / "model.safetensors")
    kwargs = {"num_classes": num_classes, "in_chans": in_chans}
    return {
        "library": "timm",
        "weights": "model.safetensors",
        "architecture": name,
        "kwargs": kwargs,
        "load": (
            f"timm.create_model({name!r}, pretrained=True, num_classes={num_classes}, in_chans={in_chans}, "
            f"pretrained_cfg_overlay=dict(file='<this folder>/model.safetensors', num_classes={num_classes}))"
        ),
    }


def load_timm(folder: Path, native: dict) -> torch.nn.Module:
    import timm

    return timm.create_model(
        native["architecture"],
        pretrained=True,
        # the head is kept only when timm believes the checkpoint has as many classes as asked for
        pretrained_cfg_overlay={
            "file": str(folder / native["weights"]),
            "num_classes": native["kwargs"]["num_classes"],
        },
        **native["kwargs"],
    )
