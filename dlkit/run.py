"""The run directory: the contract between train, evaluate, predict, report and export.

config.yaml  manifest.json  preprocess/state.json  checkpoints/{last,best}.safetensors
metrics.jsonl  eval.json  report/  exported/
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from datetime import datetime
from pathlib import Path

import yaml

from dlkit import __version__
from dlkit.atomic import atomic_write_text
from dlkit.config import dump_yaml
from dlkit.errors import UserError

FULL_HASH_LIMIT = 2 * 1024**3  # beyond this, fingerprint names, sizes and mtimes instead of contents


def fingerprint(path: Path) -> dict:
    """A hash of the data: file names and contents (or sizes and mtimes for very large data)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    digest = hashlib.sha256()
    by_content = total <= FULL_HASH_LIMIT
    for p in files:
        digest.update(str(p.relative_to(path) if path.is_dir() else p.name).encode())
        if by_content:
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        else:
            st = p.stat()
            digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return {
        "path": str(path),
        "sha256": digest.hexdigest(),
        "files": len(files),
        "bytes": total,
        "method": "contents" if by_content else "names+sizes+mtimes",
    }


def default_run_dir(recipe: str, root: Path = Path("runs")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = root / recipe / stamp
    n = 2
    while candidate.exists():
        candidate = root / recipe / f"{stamp}-{n}"
        n += 1
    return candidate


class Run:
    def __init__(self, path: Path):
        self.path = Path(path)

    @staticmethod
    def ensure_free(path: Path) -> None:
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UserError(
                f"run directory '{path}' already exists and is not empty; it is left untouched",
                "choose another --out, or add --resume to continue that run",
            )

    @classmethod
    def create(cls, path: Path) -> Run:
        cls.ensure_free(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "preprocess").mkdir(exist_ok=True)
        (path / "checkpoints").mkdir(exist_ok=True)
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> Run:
        path = Path(path)
        if not path.is_dir():
            raise UserError(f"run directory '{path}' does not exist", "give a folder made by `dlkit train`")
        missing = [
            n for n in ("config.yaml", "manifest.json", "preprocess/state.json") if not (path / n).is_file()
        ]
        if missing:
            raise UserError(
                f"'{path}' is not a dlkit run directory (missing {', '.join(missing)})",
                "give a folder made by `dlkit train`, e.g. runs/vision-classification/<name>",
            )
        return cls(path)

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())

    @property
    def recipe(self) -> str:
        return self.manifest["recipe"]

    def config(self) -> dict:
        return yaml.safe_load((self.path / "config.yaml").read_text())

    def state(self) -> dict:
        return json.loads((self.path / "preprocess" / "state.json").read_text())

    def checkpoint(self, which: str = "best") -> Path:
        best = self.path / "checkpoints" / f"{which}.safetensors"
        if which == "best" and not best.exists():
            return self.path / "checkpoints" / "last.safetensors"
        return best

    def write_config(self, cfg: dict) -> None:
        atomic_write_text(self.path / "config.yaml", dump_yaml(cfg))

    def write_state(self, state: dict) -> None:
        atomic_write_text(self.path / "preprocess" / "state.json", json.dumps(state, indent=1))

    def write_json(self, name: str, data: dict) -> None:
        atomic_write_text(self.path / name, json.dumps(data, indent=2, default=str))

    def write_manifest(self, recipe: str, cfg: dict, device: str, data: dict, **extra) -> None:
        import torch

        manifest = {
            "recipe": recipe,
            "dlkit": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "command": sys.argv,
            "seed": cfg["seed"],
            "device": device,
            "data": data,
            "created": datetime.now().isoformat(timespec="seconds"),
            **extra,
        }
        self.write_json("manifest.json", manifest)

    def update_manifest(self, **fields) -> None:
        manifest = self.manifest
        manifest.update(fields)
        self.write_json("manifest.json", manifest)
