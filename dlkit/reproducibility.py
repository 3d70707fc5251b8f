"""What re-running a run needs beyond its config.yaml, recorded in its manifest and checked again.

On CPU the same config, seed, data, package versions and thread count give the same weights bit for
bit (every fitted step is seeded or ordered: splits, samplers, augmentation, baselines, tokenizers).
The thread count counts because it changes how sums are split, so the last bits of a result. On CUDA
the fast kernels add in whatever order their threads finish; `deterministic=true` trades speed for
bit-exact runs, and without it the manifest says the run is not bit-reproducible, and why.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

# the packages whose version changes results: the model code, tokenizers, numerics, the baselines
PACKAGES = ("torch", "torchvision", "timm", "transformers", "tokenizers", "numpy", "scikit-learn")
CUBLAS_WORKSPACE = ":4096:8"  # what cuBLAS needs to pick reproducible kernels (see the torch notes)


def environment() -> dict:
    """{"versions": package -> version (None when missing), "threads": torch's intra-op threads}."""
    import torch

    from dlkit import __version__

    versions = {"dlkit": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"versions": versions, "threads": torch.get_num_threads()}


def make_deterministic(on: bool, device_type: str) -> None:
    """With `on`, on CUDA: the cuBLAS workspace setting (it must be there before cuBLAS starts, so this
    runs before the model moves to the device), deterministic algorithms only, and cuDNN's autotuner off
    (it times kernels and keeps the fastest, which can differ run to run)."""
    if not on or device_type != "cuda":
        return
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def bit_reproducible(device_type: str, deterministic: bool) -> tuple[bool, str]:
    """Whether a rerun of the same config, seed and data gives the same weights bit for bit, and why."""
    if device_type == "cpu":
        return True, "CPU: the same config, seed, data, versions and thread count give the same weights"
    if device_type == "cuda" and deterministic:
        return True, (
            "CUDA with deterministic=true: deterministic kernels and cuBLAS workspace; the same GPU model, "
            "driver, package versions, config, seed and data give the same weights"
        )
    if device_type == "cuda":
        return False, (
            "CUDA without deterministic=true: fast kernels add in thread-finishing order, so reruns differ "
            "in the last bits and then more; set deterministic=true for bit-exact runs (slower)"
        )
    return False, f"{device_type}: torch has no bit-exact mode for this device; train on CPU for that"


def manifest_beside(config_file: Path | None) -> dict | None:
    """The manifest of the run whose config.yaml `config_file` is, with that folder as "run_dir" (None for
    any other config file)."""
    import json

    if config_file is None:
        return None
    path = Path(config_file).parent / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(manifest, dict) or "recipe" not in manifest:
        return None
    return {**manifest, "run_dir": str(path.parent)}


def differences(then: dict, data: dict, now: dict) -> list[str]:
    """One line per thing that differs from the run `then` in a way that changes results: the data
    fingerprint, package versions, the thread count."""
    lines, run = [], f"run '{then.get('run_dir', '?')}'"
    before = then.get("data") or {}
    if before.get("sha256") and before["sha256"] != data.get("sha256"):
        lines.append(
            f"the data at '{data['path']}' differs from the data {run} was trained on "
            f"({before.get('files')} files, {before.get('bytes')} bytes then; {data['files']} files, "
            f"{data['bytes']} bytes now): results will differ"
        )
    old = then.get("versions") or {"dlkit": then.get("dlkit"), "torch": then.get("torch")}
    changed = [
        f"{name} {old[name]} -> {now['versions'].get(name)}"
        for name in old
        if old[name] is not None and old[name] != now["versions"].get(name)
    ]
    if changed:
        lines.append(f"package versions differ from {run}'s ({', '.join(changed)}): results may differ")
    if then.get("threads") and then["threads"] != now["threads"]:
        lines.append(
            f"{run} used {then['threads']} CPU threads, this one {now['threads']}: "
            f"results may differ in the last bits (threads={then['threads']} matches it)"
        )
    return lines
