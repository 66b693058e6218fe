"""Frontends: models from other frameworks as relax_xdsl modules.

`from_onnx(model)` imports an ONNX model (a path, bytes or an
`onnx.ModelProto`; needs the `[onnx]` extra)."""

from relax_xdsl.frontend.onnx_import import OnnxImportError, from_onnx

__all__ = ["OnnxImportError", "from_onnx"]
