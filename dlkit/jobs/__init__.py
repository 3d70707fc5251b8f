"""The jobs behind the commands: check, train, evaluate, predict. The CLI parses; these do the work."""

from dlkit.jobs.check import check
from dlkit.jobs.common import build_config, resolve_data_path, schema_for
from dlkit.jobs.evaluation import evaluate
from dlkit.jobs.predict import predict, print_records, split_overrides, write_records
from dlkit.jobs.train import train, train_and_evaluate

__all__ = [
    "build_config",
    "check",
    "evaluate",
    "predict",
    "print_records",
    "resolve_data_path",
    "schema_for",
    "split_overrides",
    "train",
    "train_and_evaluate",
    "write_records",
]
