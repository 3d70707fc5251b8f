"""A benchmark's own virtual environment on top of the project's: peers (Lightning, accelerate) are
installed there, never into the project. The venv reads the interpreter's packages (dlkit, torch)
through a .pth file, so only the extra requirements are downloaded once."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path


def ensure_venv(venv: Path, requirements: Path) -> None:
    """Create `venv` (once per requirements file) and re-exec this script inside it."""
    python = venv / "bin" / "python"
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    stamp, wanted = venv / ".requirements", requirements.read_text()
    if not stamp.exists() or stamp.read_text() != wanted:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        site = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
        ours = sysconfig.get_paths()["purelib"]
        # addsitedir, not a bare path, so the project's .pth files (dlkit's editable install) are read too
        (Path(site.stdout.strip()) / "_dlkit_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
        stamp.write_text(wanted)
    os.execv(str(python), [str(python), *sys.argv])
