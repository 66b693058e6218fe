"""Models whose weights live in an external data file: imported from their
path; a location that would read outside the model's directory (`..`, an
absolute path, a symlink) is refused naming the tensor, whatever onnx
version does or does not check."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import relax_xdsl as rx  # noqa: E402

W = np.arange(3, dtype=np.float32)


def _model() -> Any:
    graph = helper.make_graph([helper.make_node("Add", ["x", "weight"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
                              [numpy_helper.from_array(W, "weight")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _save_external(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.onnx"
    onnx.save_model(_model(), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    return path


def _relocate(path: Path, location: str) -> None:
    """Point the model's external tensor at `location` (as a hostile file would)."""
    m = onnx.load(str(path), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    path.write_bytes(m.SerializeToString())


def test_external_data_imports_from_the_path(tmp_path: Path) -> None:
    path = _save_external(tmp_path / "m")
    assert (tmp_path / "m" / "weights.bin").stat().st_size == W.nbytes
    assert b"weight" in path.read_bytes() and W.tobytes() not in path.read_bytes()
    exe = rx.compile(rx.from_onnx(str(path)), target="interp")
    for n in (1, 3):
        x = np.ones((n, 3), np.float32)
        np.testing.assert_array_equal(exe["main"](x), x + W)
    mod, params = rx.from_onnx(path, keep_params_in_input=True)
    np.testing.assert_array_equal(params["weight"], W)


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink", "symlinked_dir"])
def test_hostile_locations_are_refused(tmp_path: Path, kind: str) -> None:
    secret = tmp_path / "outside" / "secret.bin"
    secret.parent.mkdir()
    secret.write_bytes(np.full(3, 7, np.float32).tobytes())
    path = _save_external(tmp_path / "m")
    if kind == "parent":
        location = "../outside/secret.bin"
    elif kind == "absolute":
        location = str(secret)
    elif kind == "symlink":
        os.symlink(secret, tmp_path / "m" / "link.bin")
        location = "link.bin"
    else:
        os.symlink(secret.parent, tmp_path / "m" / "sub")
        location = "sub/secret.bin"
    _relocate(path, location)
    with pytest.raises(rx.OnnxImportError, match=r"tensor 'weight': external data location .* (up out of|absolute"
                                                 r"|symbolic link)"):
        rx.from_onnx(str(path))


def test_missing_external_file_is_a_clear_error(tmp_path: Path) -> None:
    path = _save_external(tmp_path / "m")
    (tmp_path / "m" / "weights.bin").unlink()
    with pytest.raises(rx.OnnxImportError, match=r"tensor 'weight': .*'weights.bin' is not a file"):
        rx.from_onnx(str(path))
