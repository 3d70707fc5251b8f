"""Checkpoints: one safetensors file each, weights + full training state, written atomically.

Keys: `model.*` (weights), `optim.<param>.<name>` (optimizer tensors), `rng.*` (random states).
Everything that is not a tensor (epoch, step, scheduler, early stopping, optimizer groups) is JSON
in the file's metadata. Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dlkit.atomic import fsync_dir
from dlkit.errors import UserError


def _tensor(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def save(path: Path, model: torch.nn.Module, meta: dict, optimizer=None, extra: dict | None = None) -> None:
    """Write weights (+ optimizer state and extra tensors) with `meta` as JSON, atomically."""
    tensors = {f"model.{k}": _tensor(v) for k, v in model.state_dict().items()}
    meta = dict(meta)
    if optimizer is not None:
        sd = optimizer.state_dict()
        plain: dict[str, dict] = {}
        for idx, state in sd["state"].items():
            for name, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{idx}.{name}"] = _tensor(value)
                else:
                    plain.setdefault(str(idx), {})[name] = value
        meta["optimizer"] = {"param_groups": sd["param_groups"], "plain": plain}
    for k, v in (extra or {}).items():
        tensors[k] = _tensor(v)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp), metadata={"dlkit": json.dumps(meta)})
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_meta(path: Path) -> dict:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return json.loads((fh.metadata() or {}).get("dlkit", "{}"))
    except Exception as exc:  # a truncated or foreign file
        raise UserError(
            f"checkpoint '{path}' cannot be read ({exc})", "it may be from an interrupted copy"
        ) from None


def load_weights(path: Path, model: torch.nn.Module) -> None:
    """Only the `model.*` tensors: what evaluate, predict and export need."""
    if not path.is_file():
        raise UserError(f"checkpoint '{path}' is missing", "train the run first, or point at a complete run")
    with safe_open(str(path), framework="pt") as fh:
        state = {k[len("model.") :]: fh.get_tensor(k) for k in fh.keys() if k.startswith("model.")}
    model.load_state_dict(state)


def load_full(path: Path, model: torch.nn.Module, optimizer=None) -> tuple[dict, dict[str, torch.Tensor]]:
    """Restore weights and optimizer; return (meta, remaining tensors such as rng.*)."""
    tensors = load_file(str(path))
    meta = read_meta(path)
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None and "optimizer" in meta:
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        for idx, plain in meta["optimizer"]["plain"].items():
            state.setdefault(int(idx), {}).update(plain)
        optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    rest = {k: v for k, v in tensors.items() if not k.startswith(("model.", "optim."))}
    return meta, rest
