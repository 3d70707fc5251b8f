"""The run directory: the contract between train, evaluate, predict, report and export.

config.yaml  manifest.json  preprocess/state.json  checkpoints/{last,best}.safetensors
metrics.jsonl  eval.json  report/  exported/
"""

from __future__ import annotations

import hashlib
import json
import os
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
NOTE_ABOVE = 256 * 1024**2  # hashing more than this takes seconds: say what is happening


def fingerprint(path: Path) -> dict:
    """A hash of the data: file names and contents (or sizes and mtimes for very large data)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    digest = hashlib.sha256()
    by_content = total <= FULL_HASH_LIMIT
    if by_content and total > NOTE_ABOVE:
        from dlkit import console

        console.info(f"fingerprinting the data ({len(files)} files, {total / 2**30:.1f} GiB)...")
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
    """A new timestamped folder name (Run.claim makes it unique among concurrent runs)."""
    return root / recipe / datetime.now().strftime("%Y%m%d-%H%M%S")


CLAIM = ".dlkit-claim"  # created exclusively by the one process that owns a run directory
ACTIVE: list[Path] = []  # the run this process is training, for the interrupt message


def alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (one we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Run:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._best: Path | None = None  # the checkpoint `load_best` used

    @staticmethod
    def ensure_free(path: Path) -> None:
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UserError(
                f"run directory '{path}' already exists and is not empty; it is left untouched",
                "choose another --out, or add --resume to continue that run",
            )

    @classmethod
    def claim(cls, path: Path, next_free: bool = False) -> Path:
        """Own `path` before any data is read: an exclusive claim file in an empty (or new) folder.
        A second process asking for the same folder stops at once; with `next_free` (a default,
        timestamped name) it takes `path-2`, `path-3`... instead. A claim left by a process that died
        before writing anything is taken over."""
        candidate, n = Path(path), 2
        while True:
            try:
                return cls._claim_one(candidate)
            except UserError:
                if not next_free:
                    raise
                candidate, n = Path(f"{path}-{n}"), n + 1

    @classmethod
    def _claim_one(cls, path: Path) -> Path:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UserError(f"'{path}' exists and is not a folder", "choose another --out") from None
        except OSError as exc:
            raise UserError(
                f"cannot create run directory '{path}' ({exc.strerror})", "choose another --out"
            ) from None
        claim = path / CLAIM
        if claim.is_file() and not alive(_owner(claim)):  # its owner was killed (kill -9, power loss)
            cls.release(path)  # a start that never reached a checkpoint leaves nothing worth keeping
            path.mkdir(parents=True, exist_ok=True)
            claim.unlink(missing_ok=True)
        if any(p.name != CLAIM for p in path.iterdir()):
            cls.ensure_free(path)
        cls.lock(path)
        return path

    @staticmethod
    def lock(path: Path) -> None:
        """Take the claim file of `path` for this process (a resume does this on its own run)."""
        claim = path / CLAIM
        if claim.is_file() and not alive(_owner(claim)):
            claim.unlink(missing_ok=True)
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            raise UserError(
                f"run directory '{path}' is being written by another dlkit process (pid {_owner(claim)})",
                "choose another --out, or wait for that run to finish",
            ) from None
        except OSError as exc:
            raise UserError(f"cannot write in '{path}' ({exc.strerror})", "choose another --out") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        ACTIVE[:] = [path]

    @staticmethod
    def unlock(path: Path) -> None:
        (Path(path) / CLAIM).unlink(missing_ok=True)
        ACTIVE.clear()

    @staticmethod
    def release(path: Path) -> None:
        """End this process's claim on a run that stopped early: a run with a checkpoint is kept for
        --resume; one that never reached its first checkpoint has what it wrote removed."""
        import shutil

        path = Path(path)
        if any((path / "checkpoints").glob("*.safetensors")):
            (path / CLAIM).unlink(missing_ok=True)  # something to resume from: keep it, free the folder
            return
        for name in ("config.yaml", "manifest.json", "metrics.jsonl", CLAIM):
            (path / name).unlink(missing_ok=True)
        for sub in ("preprocess", "checkpoints"):
            shutil.rmtree(path / sub, ignore_errors=True)
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()

    @classmethod
    def create(cls, path: Path) -> Run:
        """The folders of a run in a directory this process has claimed."""
        (path / "preprocess").mkdir(parents=True, exist_ok=True)
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
        path = self.path / "manifest.json"
        try:
            manifest = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(
                f"'{path}' is damaged ({exc})", "the run cannot be used; train it again"
            ) from None
        if not isinstance(manifest, dict) or "recipe" not in manifest:
            raise UserError(f"'{path}' is not a dlkit manifest (no 'recipe')", "train the run again")
        return manifest

    @property
    def complete(self) -> bool:
        """Training ran to its end (a killed or failing run stays 'running')."""
        return self.manifest.get("status") == "complete"

    @property
    def recipe(self) -> str:
        return self.manifest["recipe"]

    def config(self) -> dict:
        return self._read(self.path / "config.yaml", yaml.safe_load)

    def state(self) -> dict:
        return self._read(self.path / "preprocess" / "state.json", json.loads)

    @staticmethod
    def _read(path: Path, parse) -> dict:
        try:
            value = parse(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            raise UserError(
                f"'{path}' is damaged ({exc})", "the run cannot be used; train it again"
            ) from None
        if not isinstance(value, dict):
            raise UserError(f"'{path}' is damaged (not a mapping)", "the run cannot be used; train it again")
        return value

    def checkpoint(self, which: str = "best") -> Path:
        """The path of `best` or `last`; for `best`, the one `load_best` read (it may have fallen back to
        `last`), else `best` when it exists, else `last`."""
        folder = self.path / "checkpoints"
        if which != "best":
            return folder / f"{which}.safetensors"
        if self._best is not None:
            return self._best
        best = folder / "best.safetensors"
        return best if best.exists() else folder / "last.safetensors"

    def load_best(self, model) -> Path:
        """The run's best weights into `model`, read once and checked; an intact `last` stands in for a
        damaged `best` (with a warning). The checkpoint used."""
        from dlkit.engine import checkpoint

        folder = self.path / "checkpoints"
        self._best = checkpoint.load_weights(
            [folder / "best.safetensors", folder / "last.safetensors"], model
        )
        return self._best

    def write_config(self, cfg: dict) -> None:
        atomic_write_text(self.path / "config.yaml", dump_yaml(cfg))

    def write_state(self, state: dict) -> None:
        atomic_write_text(self.path / "preprocess" / "state.json", json.dumps(state, indent=1))

    def write_json(self, name: str, data: dict) -> None:
        atomic_write_text(self.path / name, json.dumps(data, indent=2, default=str))

    def write_manifest(self, recipe: str, cfg: dict, device: str, data: dict, **extra) -> None:
        """What the run was made from beyond config.yaml: versions, threads, device, data fingerprint,
        and whether a rerun gives the same weights bit for bit (`bit_reproducible`, with the reason)."""
        import torch

        from dlkit.reproducibility import bit_reproducible, environment
        from dlkit.version import git_commit

        exact, why = bit_reproducible(torch.device(device).type, cfg.get("deterministic", False))
        manifest = {
            "recipe": recipe,
            "dlkit": __version__,
            "git_commit": git_commit(),  # the checkout's commit (+dirty), None for an installed wheel
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "command": sys.argv,
            "seed": cfg["seed"],
            "device": device,
            "data": data,
            **environment(),
            "deterministic": cfg.get("deterministic", False),
            "bit_reproducible": exact,
            "bit_reproducible_reason": why,
            "created": datetime.now().isoformat(timespec="seconds"),
            "status": "running",
            **extra,
        }
        self.write_json("manifest.json", manifest)

    def update_manifest(self, **fields) -> None:
        manifest = self.manifest
        manifest.update(fields)
        self.write_json("manifest.json", manifest)


def _owner(claim: Path) -> int:
    try:
        return int(claim.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0
