"""Checkpoints: one safetensors file each, weights + full training state, written atomically, checked.

Keys: `model.*` (weights), `optim.<param>.<name>` (optimizer tensors), `rng.*` (random states).
Everything that is not a tensor (epoch, step, scheduler, early stopping, optimizer groups) is JSON
in the file's metadata, with a SHA-256 of every tensor. Loading never unpickles anything, and every
load goes through `read`, which turns a truncated, corrupted or foreign file, or one that does not fit
the model, into a UserError naming the file; `first_intact` falls back to the other checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dlkit import console
from dlkit.atomic import fsync_dir
from dlkit.errors import UserError

DAMAGED_HINT = "it may be from an interrupted copy or a full disk; retrain, or use the run's other checkpoint"


def _tensor(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names and raw bytes of every tensor, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save(path: Path, model: torch.nn.Module, meta: dict, optimizer=None, extra: dict | None = None) -> None:
    """Write weights (+ optimizer state and extra tensors) with `meta` as JSON, atomically."""
    write(path, *snapshot(model, meta, optimizer, extra))


def snapshot(model: torch.nn.Module, meta: dict, optimizer=None, extra: dict | None = None) -> tuple:
    """(tensors, metadata JSON) of a checkpoint: copies, so training may go on while they are written."""
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
    return tensors, json.dumps(meta)


def write(path: Path, tensors: dict[str, torch.Tensor], meta_json: str) -> None:
    """A `snapshot` to `path`, its checksum added, atomically (complete or absent) and durably."""
    meta = json.loads(meta_json)
    meta["sha256"] = digest(tensors)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp), metadata={"dlkit": json.dumps(meta)})
    _sync_and_replace(tmp, path)


class Writer:
    """Checkpoint writes in a background thread, one at a time and in order, so hashing, writing and
    fsync overlap with the next training steps (the state is copied on the caller's thread first, by
    `snapshot`). `wait()` returns once everything handed over is on disk, and raises a failed write's
    error; a new write waits for the previous one. A kill mid-write leaves the previous checkpoint, whole."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, job: Callable[[], None]) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(job,), name="dlkit-checkpoint", daemon=True)
        self._thread.start()

    def _run(self, job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # raised on the training thread by the next wait()
            self._error = exc

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def copy(src: Path, dest: Path) -> None:
    """`dest` becomes a durable copy of `src` (as atomic as `save`: complete or absent)."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.copyfile(src, tmp)
    _sync_and_replace(tmp, dest)


def _sync_and_replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(meta, tensors) of a checkpoint, verified against its checksum; UserError if it is not sound."""
    if not path.is_file():
        raise UserError(f"checkpoint '{path}' is missing", "train the run first, or point at a complete run")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("dlkit", "{}"))
        tensors = load_file(str(path))
    except Exception as exc:  # truncated, overwritten, or not a safetensors file at all
        raise UserError(f"checkpoint '{path}' is damaged and cannot be read ({exc})", DAMAGED_HINT) from None
    if "sha256" in meta and digest(tensors) != meta["sha256"]:
        raise UserError(
            f"checkpoint '{path}' is damaged: its contents do not match its checksum", DAMAGED_HINT
        )
    return meta, tensors


def first_intact(paths: list[Path]) -> tuple[Path, dict, dict[str, torch.Tensor]]:
    """The first of `paths` that reads and checks out, as (path, meta, tensors), read once; a warning
    for each damaged one before it."""
    problems = []
    for path in paths:
        if not path.is_file():
            continue
        try:
            meta, tensors = read(path)
        except UserError as exc:
            problems.append(exc)
            continue
        for problem in problems:
            console.warn(f"{problem.message}; using '{path.name}' instead")
        return path, meta, tensors
    if problems:
        raise problems[0]
    raise UserError(
        f"no checkpoint in '{paths[0].parent}'", "train the run first, or point at a complete run"
    )


def _apply(path: Path, model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:  # missing/unexpected keys or other shapes: another model or config
        detail = str(exc).split("\n\t", 1)[-1].replace("\n\t", "; ")[:400]
        raise UserError(
            f"checkpoint '{path}' does not fit this model ({detail})",
            "it was saved by another model or config; use the run's own config.yaml",
        ) from None


def load_weights(paths: list[Path], model: torch.nn.Module) -> Path:
    """Only the `model.*` tensors (what evaluate, predict and export need), from the first intact of
    `paths`; the path they came from."""
    path, _, tensors = first_intact(paths)
    _apply(path, model, tensors)
    return path


def load_full(paths: list[Path], model: torch.nn.Module, optimizer=None) -> tuple[Path, dict, dict]:
    """Restore weights and optimizer from the first intact of `paths`; return (path, meta, remaining
    tensors such as rng.*)."""
    path, meta, tensors = first_intact(paths)
    missing = [k for k in ("epoch", "step", "scheduler", "early_stopping", "rng") if k not in meta]
    if missing:
        raise UserError(
            f"checkpoint '{path}' lacks the training state needed to resume ({', '.join(missing)})",
            "it is not a `last` checkpoint written by dlkit train; start a new run",
        )
    _apply(path, model, tensors)
    if optimizer is not None and "optimizer" in meta:
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        for idx, plain in meta["optimizer"]["plain"].items():
            state.setdefault(int(idx), {}).update(plain)
        try:
            optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
        except (ValueError, KeyError, RuntimeError) as exc:
            raise UserError(
                f"checkpoint '{path}' has optimizer state for another setup ({exc})",
                "resume with the run's own config, or start a new run",
            ) from None
    rest = {k: v for k, v in tensors.items() if not k.startswith(("model.", "optim."))}
    return path, meta, rest
