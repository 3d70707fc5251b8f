"""Running an exported graph: ONNX Runtime on the CPU, or a TorchScript module, as a function of tensors.

A graph exported without `--dynamic-batch` takes a fixed number of examples; `fixed_batches` feeds it any
batch by cutting it into pieces of that size (the last one padded by repeating its last example, the
padding's outputs dropped), so predict's chunking never has to know.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dlkit.errors import UserError
from dlkit.extras import require


def onnx_session(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session for `path` (`threads` intra-op threads; None lets ORT choose)."""
    ort = require("onnxruntime", "export")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_forward(session, names: tuple[str, ...]) -> Callable[..., tuple[torch.Tensor, ...]]:
    """Tensors in (named `names`, in order) -> tensors out, batch size taken care of. An input the graph
    does not use (e.g. zero categorical columns) was dropped by the exporter and is not fed."""
    kinds = {i.name: i.type for i in session.get_inputs()}
    batch = session.get_inputs()[0].shape[0]

    def run(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feed = {}
        for name, t in zip(names, tensors, strict=True):
            if name not in kinds:
                continue
            array = t.detach().cpu().numpy()
            feed[name] = array.astype(np.float32) if kinds[name] == "tensor(float)" else array
        return tuple(torch.from_numpy(np.ascontiguousarray(o)) for o in session.run(None, feed))

    return fixed_batches(run, batch) if isinstance(batch, int) else run


def torchscript_forward(module: torch.jit.ScriptModule) -> Callable[..., tuple[torch.Tensor, ...]]:
    def run(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            out = module(*tensors)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    return run


def fixed_batches(run: Callable, size: int) -> Callable[..., tuple[torch.Tensor, ...]]:
    """`run` for a graph that takes exactly `size` examples, made to take any number."""

    def any_batch(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = len(tensors[0])
        parts: list[tuple[torch.Tensor, ...]] = []
        for start in range(0, n, size):
            piece = [t[start : start + size] for t in tensors]
            short = size - len(piece[0])
            if short:
                piece = [torch.cat([p, p[-1:].expand(short, *p.shape[1:])]) for p in piece]
            out = run(*piece)
            parts.append(tuple(o[: size - short] for o in out))
        return tuple(torch.cat(list(column)) for column in zip(*parts, strict=True))

    return any_batch


def load_exported(run_path: Path, fmt: str = "onnx", threads: int | None = None):
    """(forward, export.json) of a run's exported graph; UserError when it is missing or failed parity."""
    folder = run_path / "exported" / fmt
    meta_file = folder / "export.json"
    if not meta_file.is_file():
        raise UserError(
            f"'{run_path}' has no {fmt} export ({meta_file} is missing)",
            f"run `dlkit export {run_path} --format {fmt}` first",
        )
    meta = json.loads(meta_file.read_text())
    if meta.get("status") != "ok":
        raise UserError(
            f"the {fmt} export in '{folder}' failed its parity check ({meta.get('status')})",
            "see parity in its export.json; export again (e.g. without --quantize) before predicting with it",
        )
    graph = folder / meta["graph"]
    if fmt == "onnx":
        return onnx_forward(onnx_session(graph, threads), tuple(i["name"] for i in meta["inputs"])), meta
    return load_exported_graph(graph), meta


def load_exported_graph(path: Path) -> Callable[..., tuple[torch.Tensor, ...]]:
    """A saved TorchScript module as a function of tensors (torch.jit.load's deprecation note hidden)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torchscript_forward(torch.jit.load(str(path), map_location="cpu"))
