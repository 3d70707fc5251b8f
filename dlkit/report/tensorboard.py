"""TensorBoard event files during training (`logging.tensorboard=true`): RUN/tb/, one point per check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def require_tensorboard() -> None:
    """Stop before any training when the `report` extra is missing (exit 2 with the install line)."""
    from dlkit.extras import require

    require("tensorboard", "report")
    require("torch.utils.tensorboard", "report")


class TensorBoardLog:
    """Writes each validation check's losses, validation metrics, learning rate and mean gradient norm
    as scalars at its optimizer step, readable by `tensorboard --logdir RUN/tb`."""

    def __init__(self, folder: Path, monitor: str):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))
        self.monitor = monitor

    def __call__(self, epoch: int, record: dict) -> None:
        step = record.get("step", 0)
        scalars = {
            "loss/train": record.get("train_loss"),
            "loss/val": record.get("val_loss"),
            f"monitor/{self.monitor}": record.get(f"val_{self.monitor}"),
            "lr": record.get("lr"),
            "epoch": record.get("epoch"),
            "grad/mean_norm": record.get("grad", {}).get("mean"),
        }
        scalars |= {f"val/{k[4:]}": v for k, v in record.items() if k.startswith("val_") and k != "val_loss"}
        for tag, value in scalars.items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def chain(self, then: Callable | None) -> Callable:
        """A check callback that logs, then calls `then` (the caller's own callback) if given."""

        def both(epoch: int, record: dict) -> bool | None:
            self(epoch, record)
            return then(epoch, record) if then is not None else None  # True from `then` stops training

        return both

    def close(self) -> None:
        self.writer.close()
