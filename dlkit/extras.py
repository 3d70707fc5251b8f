"""Optional dependencies (`pip install 'dlkit[EXTRA]'`): imported only by the command that needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from dlkit.errors import UserError


def require(module: str, extra: str) -> ModuleType:
    """Import `module`, or stop with exit 2 and the one line that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(
            f"this needs the optional package '{module.split('.')[0]}'", f"pip install 'dlkit[{extra}]'"
        ) from None
