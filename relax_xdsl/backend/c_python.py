"""CPython entry points of a compiled library: each function called with
numpy arrays straight from Python (METH_FASTCALL), without ctypes's
per-argument conversions and result wrapping, which dominate a call of a
small function.

An entry point takes only what its C function takes as is: exact
`numpy.ndarray`s of its dtype and rank, native byte order, aligned and
C-contiguous, with its static dims (ints for index
parameters), bool arrays holding only bytes 0 and 1. Anything else, and any call the C function fails, returns
None, and the ctypes path (backend/c.py) checks, converts, calls and words
the error as before. Needs Python's and numpy's C headers; without them the
library is built without these entry points.

Only graph functions get one (what `Executable` exposes): a tensor program
is called from its graph function's C, and `backend.call` of one goes
through ctypes. An entry point is a few hundred lines of C once numpy's
macros expand, and a model such as DenseNet-121 lowers to nearly two
hundred tensor programs: their entry points were most of the compiler's
work on the library's first translation unit.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from functools import cache
from pathlib import Path

import numpy as np

from relax_xdsl import dtypes
from relax_xdsl.backend import c_runtime
from relax_xdsl.backend.c_emitter import FuncSignature
from relax_xdsl.backend.c_names import ENTRY, FUNCTION, c_ident, c_string

_RUNTIME = """
/* ---- CPython entry points (relax_xdsl/backend/c_python.py) ---- */
#include "rx_python.h"
"""


@cache
def helper_names() -> frozenset[str]:
    """The `rx...` names the C runtime of a library declares (its headers:
    the runtime, the BLAS kernels, these entry points): no library symbol may
    take one, except the BLAS library functions blas.py registers under
    their own symbols."""
    names = re.findall(r"\brx\w*", "".join(c_runtime.text(name) for name in c_runtime.HEADERS))
    return frozenset(n for n in names if not re.fullmatch(r"rx_blas_(matmul|dense|packed_dense)_\w+", n))


@cache
def include_flags() -> tuple[str, ...] | None:
    """-I flags for Python's and numpy's headers, or None when either is missing."""
    py_include = Path(sysconfig.get_paths()["include"])
    np_include = Path(np.get_include())
    if not (py_include / "Python.h").is_file() or not (np_include / "numpy" / "arrayobject.h").is_file():
        return None
    return (f"-I{py_include}", f"-I{np_include}")


def _entry(sig: FuncSignature) -> tuple[str, str]:
    """(C name, C text) of one function's entry point."""
    name = c_ident(ENTRY, sig.name)
    lines = [f"static PyObject* {name}(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {{",
             f"  if (nargs != {len(sig.params)}) Py_RETURN_NONE;"]
    lines.append('  const void* const* table = PyCapsule_GetPointer(self, "relax_xdsl.table");')
    call = ["table"]
    for k, (kind, info) in enumerate(sig.params):
        if kind == "memref":
            elem, dyn, shape = info  # type: ignore[misc]
            typenum = dtypes.np_dtype(elem).num
            lines.append(f"  PyArrayObject* x{k} = rxpy_plain(args[{k}], {typenum}, {len(shape)});")
            tests = [f"!x{k}"] + [f"PyArray_DIMS(x{k})[{axis}] != {d}" for axis, d in enumerate(shape) if d >= 0]
            if dtypes.dtype_name(elem) == "bool":
                tests.append(f"!rxpy_bools(x{k})")
            lines.append(f"  if ({' || '.join(tests)}) Py_RETURN_NONE;")
            call.append(f"PyArray_DATA(x{k})")
            call += [f"(int64_t)PyArray_DIMS(x{k})[{axis}]" for axis in dyn]
        else:
            lines += [f"  if (!PyLong_CheckExact(args[{k}])) Py_RETURN_NONE;",
                      f"  int overflow{k} = 0;",
                      f"  long long i{k} = PyLong_AsLongLongAndOverflow(args[{k}], &overflow{k});",
                      f"  if (overflow{k} || (i{k} == -1 && PyErr_Occurred())) {{ PyErr_Clear(); Py_RETURN_NONE; }}"]
            call.append(f"(int64_t)i{k}")
    nres = len(sig.results)
    offsets, total = [], 0
    for _, rank in sig.results:
        offsets.append(total)
        total += max(1, rank)
    lines += [f"  void* res[{max(1, nres)}] = {{0}};", f"  int64_t dims[{max(1, total)}];", "  int status;"]
    call += [f"&res[{i}], &dims[{offsets[i]}]" for i in range(nres)]
    lines += ["  Py_BEGIN_ALLOW_THREADS",
              f"  status = {c_ident(FUNCTION, sig.name)}({', '.join(call)});",
              "  Py_END_ALLOW_THREADS",
              "  if (status != 0) Py_RETURN_NONE;"]
    wraps = [f"rxpy_wrap(res[{i}], {rank}, &dims[{offsets[i]}], {dtypes.np_dtype(elem).num})"
             for i, (elem, rank) in enumerate(sig.results)]
    if nres == 1:
        lines.append(f"  return {wraps[0]};")
    else:
        lines.append(f"  PyObject* out = PyTuple_New({nres});")
        lines.append("  if (!out) {" + " ".join(f"free(res[{i}]);" for i in range(nres)) + " return NULL; }")
        for i, wrap in enumerate(wraps):
            rest = " ".join(f"free(res[{j}]);" for j in range(i + 1, nres))
            lines.append(f"  PyObject* r{i} = {wrap};")
            lines.append(f"  if (!r{i}) {{ {rest} Py_DECREF(out); return NULL; }}")
            lines.append(f"  PyTuple_SET_ITEM(out, {i}, r{i});")
        lines.append("  return out;")
    lines.append("}")
    return name, "\n".join(lines)


def _fixed_typenums(sig: FuncSignature) -> bool:
    """Whether every array of the function has a numpy type number fixed at
    build time: bfloat16's (ml_dtypes') is assigned when ml_dtypes is
    imported, so functions with bfloat16 arrays are called through ctypes."""
    elems = [info[0] for kind, info in sig.params if kind == "memref"] + [e for e, _ in sig.results]  # type: ignore[index]
    return all(dtypes.dtype_name(e) != "bfloat16" for e in elems)


def source(signatures: dict[str, FuncSignature]) -> str:
    """The C text appended to a library: the graph functions' entry points and
    `rxpy_functions(table)`, which returns {entry point's C name (c_names.ENTRY):
    callable} bound to one module's constants table (keys in C text are
    identifiers, never names from the IR)."""
    entries = [_entry(sig) for sig in signatures.values() if not sig.tensor_program and _fixed_typenums(sig)]
    methods = "".join(f"  {{{c_string(name)}, (PyCFunction)(void (*)(void)){name}, METH_FASTCALL, NULL}},\n"
                      for name, _ in entries)
    # the Python and numpy versions key the build cache: the entry points are built against their ABI
    versions = f"/* Python {sys.version.split()[0]}, numpy {np.__version__} */"
    return "\n".join([_RUNTIME, versions, *(text for _, text in entries), f"""
static PyMethodDef rxpy_methods[] = {{
{methods}  {{NULL, NULL, 0, NULL}}
}};
/* Modules that differ only in weights share this library: each one's
   functions carry its own constants table. */
PyObject* rxpy_functions(void* table) {{
  import_array();
  PyObject* bound = PyCapsule_New(table, "relax_xdsl.table", NULL);
  PyObject* found = bound ? PyDict_New() : NULL;
  if (!found) {{ Py_XDECREF(bound); return NULL; }}
  for (PyMethodDef* m = rxpy_methods; m->ml_name; ++m) {{
    PyObject* f = PyCFunction_New(m, bound);
    if (!f || PyDict_SetItemString(found, m->ml_name, f) < 0) {{
      Py_XDECREF(f); Py_DECREF(found); Py_DECREF(bound); return NULL;
    }}
    Py_DECREF(f);
  }}
  Py_DECREF(bound);
  return found;
}}
"""])
