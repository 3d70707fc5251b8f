"""Writing a graph: ONNX (torch.onnx's TorchScript-based exporter, which needs no onnxscript), int8 dynamic
quantisation with ONNX Runtime, and TorchScript by tracing."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch

from dlkit.errors import JobError
from dlkit.extras import require


@contextlib.contextmanager
def _quiet():
    """The exporters warn about their own deprecation and print tracer notes: none of it is the user's."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def write_onnx(
    graph: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    dynamic: dict[str, dict[int, str]],
    dynamic_batch: bool,
    opset: int,
    path: Path,
) -> None:
    """Export `graph` on `example`; the batch axis is named (variable) only with `dynamic_batch`."""
    require("onnx", "export")
    axes: dict[str, dict[int, str]] = {}
    for name in (*inputs, *outputs):
        axes[name] = ({0: "batch"} if dynamic_batch else {}) | dynamic.get(name, {})
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                graph,
                example,
                str(path),
                dynamo=False,
                input_names=list(inputs),
                output_names=list(outputs),
                dynamic_axes={k: v for k, v in axes.items() if v},
                opset_version=opset,
                do_constant_folding=True,
            )
    except Exception as exc:  # an operator without an ONNX form at this opset, say
        raise JobError(
            f"ONNX export failed: {str(exc)[:400]}", "try another --opset (e.g. 17 or 18)"
        ) from None
    import onnx

    onnx.checker.check_model(str(path))


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation: weights stored as int8, activations quantised on the fly (CPU)."""
    require("onnxruntime", "export")
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = target.with_name(target.stem + ".pre.onnx")
    try:
        with _quiet():
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8)
    finally:
        prepared.unlink(missing_ok=True)


def write_torchscript(graph: torch.nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> None:
    """Trace `graph` on `example` and save it; `torch.jit.load(path)` runs it without dlkit."""
    try:
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(graph, example, check_trace=False, strict=False)
            traced = torch.jit.freeze(traced.eval())
    except Exception as exc:
        raise JobError(f"TorchScript tracing failed: {str(exc)[:400]}", "try --format onnx") from None
    with _quiet():
        torch.jit.save(traced, str(path))
