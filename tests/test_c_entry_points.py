"""The C target's CPython entry points (backend/c_python.py): taken for
inputs exactly as the C function wants them, and anything else (layout,
byte order, dtype, subclasses, lists, failing checks) goes the ctypes way
with the same results and errors; results own their buffers."""

from __future__ import annotations

import gc
import resource

import numpy as np
import pytest
from util import assert_close, rand

import relax_xdsl as rx
from relax_xdsl import op
from relax_xdsl.backend import c_python

pytestmark = pytest.mark.skipif(c_python.include_flags() is None, reason="no Python or numpy C headers")


def two_input_module() -> object:
    with rx.FunctionBuilder("main") as fb:
        x, y = fb.param("x", ["n", 3], "float32"), fb.param("y", ["n", 3], "float32")
        s = op.add(x, y)
        fb.ret(fb.tuple(s, op.sum(s, axis=[1])))
    return fb.module


def expected(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = (np.asarray(x, np.float32) + np.asarray(y, np.float32)).astype(np.float32)
    return s, s.sum(axis=1)


class Sub(np.ndarray):
    pass


@pytest.fixture(scope="module")
def exe() -> rx.Executable:
    return rx.compile(two_input_module(), target="c")


def test_plain_inputs_take_the_entry_point(exe: rx.Executable, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "main" in exe.backend.fast

    def no_ctypes(*args: object) -> None:
        raise AssertionError("the ctypes path ran for plain inputs")

    monkeypatch.setattr(exe.backend, "call", no_ctypes)
    for n in (1, 4):
        x, y = rand((n, 3), seed=n), rand((n, 3), seed=n + 1)
        assert_close(exe.main(x, y), expected(x, y))


def test_only_graph_functions_get_an_entry_point(exe: rx.Executable) -> None:
    """Tensor programs are called from C; through the backend they take the
    ctypes path, with the same results."""
    programs = [name for name, sig in exe.backend.signatures().items() if sig.tensor_program]
    assert programs and set(exe.backend.fast) == {"main"}
    assert all(f"rxpy_f_{name}(" not in exe.c_source for name in programs)
    assert "add" in programs
    x, y, out = rand((4, 3), seed=5), rand((4, 3), seed=6), np.zeros((4, 3), np.float32)
    exe.backend.call("add", [x, y, out])
    assert_close(out, x + y)


@pytest.mark.parametrize("kind", ["transposed", "big-endian", "float64", "subclass", "list", "misaligned", "readonly"])
def test_other_inputs_fall_back_with_the_same_results(exe: rx.Executable, kind: str) -> None:
    x, y = rand((2, 3), seed=1), rand((2, 3), seed=2)
    if kind == "transposed":
        x = np.ascontiguousarray(x.T).T
    elif kind == "big-endian":
        x = x.astype(">f4")
    elif kind == "float64":
        x = x.astype(np.float64)
    elif kind == "subclass":
        x = x.view(Sub)
    elif kind == "list":
        x = x.tolist()
    elif kind == "misaligned":
        raw = np.zeros(x.nbytes + 1, np.uint8)
        x2 = np.frombuffer(raw.data, dtype=np.float32, count=x.size, offset=1).reshape(x.shape)
        assert not x2.flags.aligned
        x2[...] = x
        x = x2
    elif kind == "readonly":
        x.flags.writeable = False
    # inputs are only read: a read-only array is taken as it is
    assert (exe.backend.fast["main"](x, y) is None) == (kind != "readonly")
    slow = rx.compile(two_input_module(), target="c")
    slow["main"]._entry = None  # the ctypes path alone

    def outcome(e: rx.Executable) -> object:
        try:
            return e.main(x, y)
        except (rx.RelaxError, TypeError) as err:
            return (type(err), str(err))

    got, want = outcome(exe), outcome(slow)
    if isinstance(want, tuple) and isinstance(want[0], type):
        assert got == want and "input 'x'" in want[1]
    else:
        assert_close(got, want)
        assert_close(got, expected(x, y))


def test_failing_checks_are_worded_by_the_ctypes_path(exe: rx.Executable) -> None:
    with pytest.raises(rx.RelaxError, match="n"):
        exe.main(rand((2, 3)), rand((3, 3)))
    assert exe.backend.fast["main"](rand((2, 3)), rand((3, 3))) is None
    assert exe.backend.fast["main"](rand((2, 3))) is None  # wrong count
    empty = exe.backend.fast["main"](rand((0, 3)), rand((0, 3)))  # an empty batch is an ordinary input
    assert_close(empty, exe.main(rand((0, 3)), rand((0, 3))))


def test_results_own_their_buffers(exe: rx.Executable) -> None:
    x = rand((512, 3))
    s, total = exe.main(x, x)
    assert s.flags.owndata is False and s.base is not None and s.flags.writeable
    s[0, 0] = 7.0  # writable, and ours
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    big = rand((1 << 18, 3))
    for _ in range(300):  # 3 MiB of results per call: a leak would add ~900 MiB
        exe.main(big, big)
    gc.collect()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


def test_without_headers_the_ctypes_path_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c_python, "include_flags", lambda: None)
    exe = rx.compile(two_input_module(), target="c")
    assert exe.backend.fast == {} and "rxpy_" not in exe.c_source
    x = rand((3, 3))
    assert_close(exe.main(x, x), expected(x, x))


def test_headers_that_do_not_compile_cost_only_speed(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("RELAX_XDSL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(c_python, "include_flags", lambda: ("-I/nonexistent/include",))
    monkeypatch.setattr(c_python, "_RUNTIME", "#include <no_such_header_rx.h>\n" + c_python._RUNTIME)
    exe = rx.compile(two_input_module(), target="c")
    assert exe.backend.fast == {}
    x = rand((2, 3))
    assert_close(exe.main(x, x), expected(x, x))
