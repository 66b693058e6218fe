"""Running an ONNX model the way onnx's backend API does (`prepare(model).run(inputs)`),
with sequence and optional inputs and outputs.

The importer keeps sequences at import time (onnx_sequences.py), so a model
with a sequence input is imported for given lengths. `PreparedModel.run`
takes the inputs as onnx's runner passes them -- arrays, lists of arrays for
sequences, None for absent optionals --, imports and compiles the model for
the lengths, presences and (for items whose type gives no shape) ranks it
sees, and keeps that executable for later runs with the same ones: a run
with another length compiles once more. Its outputs come back the same way:
a list per sequence output, None for an absent optional.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from relax_xdsl.errors import RelaxError
from relax_xdsl.frontend.onnx_sequences import OutputLayout, check_length, item_name, output_layout

# Executables kept per model: each length tuple seen compiles one, so a caller cycling through lengths must not
# accumulate compiled libraries without bound.
MAX_SPECIALIZATIONS = 8


@dataclass
class _Input:
    """A graph input: its name, kind ("tensor", "sequence", "optional") and,
    for a sequence (or an optional of one), whether its element type has a shape."""

    name: str
    kind: str
    holds_sequence: bool = False
    item_shaped: bool = True


def _describe_inputs(graph: Any) -> list[_Input]:
    inits = {t.name for t in graph.initializer}
    out = []
    for vi in graph.input:
        if vi.name in inits:
            continue
        t = vi.type
        kind = t.WhichOneof("value")
        if kind == "optional_type":
            t = t.optional_type.elem_type
        seq = t.WhichOneof("value") == "sequence_type"
        shaped = t.sequence_type.elem_type.tensor_type.HasField("shape") if seq else True
        out.append(_Input(vi.name, "optional" if kind == "optional_type" else "sequence" if seq else "tensor", seq,
                          shaped))
    return out


class PreparedModel:
    """An ONNX model ready to run on `target`; see the module docstring."""

    def __init__(self, model: Any, target: str = "c", **compile_options: Any):
        from relax_xdsl.frontend.onnx_import import load_model

        self.proto = load_model(model)
        self.target = target
        self.compile_options = compile_options
        self.inputs = _describe_inputs(self.proto.graph)
        self._compiled: OrderedDict[tuple[Any, ...], tuple[Any, OutputLayout]] = OrderedDict()

    def _flatten(self, inputs: Sequence[Any]) -> tuple[tuple[Any, ...], list[np.ndarray], dict[str, Any]]:
        """(the specialization key, the function's arguments, from_onnx's keywords for them)."""
        if len(inputs) != len(self.inputs):
            raise RelaxError(f"the model takes {len(self.inputs)} inputs "
                             f"({', '.join(i.name for i in self.inputs)}), {len(inputs)} given")
        key: list[Any] = []
        args: list[np.ndarray] = []
        lengths: dict[str, int] = {}
        absent: list[str] = []
        shapes: dict[str, list[str]] = {}
        for spec, value in zip(self.inputs, inputs):
            if value is None:
                if spec.kind != "optional":
                    raise RelaxError(f"input {spec.name!r} is None, but only an optional input can be absent")
                absent.append(spec.name)
                key.append(None)
                continue
            if not spec.holds_sequence:
                if isinstance(value, (list, tuple)):
                    raise RelaxError(f"input {spec.name!r} is a tensor, but a {type(value).__name__} was given")
                args.append(np.asarray(value))
                key.append("t")
                continue
            if not isinstance(value, (list, tuple)):
                raise RelaxError(f"input {spec.name!r} is a sequence: pass a list of arrays, "
                                 f"not {type(value).__name__}")
            check_length(len(value), f"input {spec.name!r}")
            items = [np.asarray(v) for v in value]
            dtypes = sorted({a.dtype.name for a in items})
            if len(dtypes) > 1:
                raise RelaxError(f"input {spec.name!r}: a sequence's tensors must share one element type "
                                 f"(ONNX sequences are homogeneous), got {', '.join(dtypes)}")
            lengths[spec.name] = len(items)
            ranks = tuple(a.ndim for a in items)
            if not spec.item_shaped:  # the type gives no rank: each item's dims become fresh symbols
                for i, a in enumerate(items):
                    shapes[item_name(spec.name, i)] = [f"{item_name(spec.name, i)}_dim{k}" for k in range(a.ndim)]
            key.append((len(items), ranks if not spec.item_shaped else ()))
            args += items
        return tuple(key), args, {"sequence_lengths": lengths, "absent_inputs": absent, "shapes": shapes}

    def specialize(self, inputs: Sequence[Any]) -> tuple[Any, OutputLayout, list[np.ndarray]]:
        """(the executable for these inputs' lengths, how it returns the outputs, its arguments).
        Import errors (OnnxImportError) come from here."""
        import relax_xdsl as rx
        from relax_xdsl.frontend.onnx_import import from_onnx

        key, args, keywords = self._flatten(inputs)
        if key in self._compiled:
            self._compiled.move_to_end(key)
        else:
            module = from_onnx(self.proto, **keywords)
            layout = output_layout(module)
            assert layout is not None
            self._compiled[key] = (rx.compile(module, target=self.target, **self.compile_options), layout)
            while len(self._compiled) > MAX_SPECIALIZATIONS:
                self._compiled.popitem(last=False)
        exe, layout = self._compiled[key]
        return exe, layout, args

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        """The model's outputs for `inputs`: arrays, lists of arrays (sequences), None (absent optionals)."""
        exe, layout, args = self.specialize(inputs)
        got = exe["main"](*args)
        results = list(got) if isinstance(got, (tuple, list)) else [got]
        return layout.regroup(results)


def prepare(model: Any, target: str = "c", **compile_options: Any) -> PreparedModel:
    """An ONNX model (path, bytes or ModelProto) to run with `.run(inputs)`; compile_options go to rx.compile."""
    return PreparedModel(model, target, **compile_options)
