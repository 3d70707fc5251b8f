"""Exporting a run's model (ONNX, TorchScript, its library's native format) with a parity check, and running
an exported ONNX graph in `dlkit predict --backend onnx`. Needs `pip install 'dlkit[export]'` for ONNX."""

from dlkit.export.adapter import CallModel, ExportAdapter, not_exportable

__all__ = ["CallModel", "ExportAdapter", "not_exportable"]
