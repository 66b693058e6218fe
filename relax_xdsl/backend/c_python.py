"""CPython entry points of a compiled library: each function called with
numpy arrays straight from Python (METH_FASTCALL), without ctypes's
per-argument conversions and result wrapping (a whole call of a tiny add:
~12 -> ~1.3 us).

An entry point takes only what its C function takes as is: exact
`numpy.ndarray`s of its dtype and rank, native byte order, aligned and
C-contiguous, with its static dims (ints for index
parameters), bool arrays holding only bytes 0 and 1. Anything else, and any call the C function fails, returns
None, and the ctypes path (backend/c.py) checks, converts, calls and words
the error as before. Needs Python's and numpy's C headers; without them the
library is built without these entry points.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from functools import cache
from pathlib import Path

import numpy as np

from relax_xdsl import dtypes
from relax_xdsl.backend.c_emitter import PRELUDE, FuncSignature
from relax_xdsl.backend.c_names import ENTRY, FUNCTION, c_ident, c_string

_RUNTIME = """
/* ---- CPython entry points (relax_xdsl/backend/c_python.py) ---- */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
static void rxpy_release(PyObject* capsule) { free(PyCapsule_GetPointer(capsule, "relax_xdsl.buffer")); }
/* An array owning a buffer the library malloc'd (freed with the array). */
static PyObject* rxpy_wrap(void* data, int rank, const int64_t* dims64, int typenum) {
  npy_intp dims[NPY_MAXDIMS];
  int64_t size = 1;
  for (int i = 0; i < rank; ++i) {
    dims[i] = (npy_intp)dims64[i];
    if (dims64[i] < 0 || __builtin_mul_overflow(size, dims64[i], &size)) {  /* not from a buffer rx_alloc gave */
      free(data);
      PyErr_SetString(PyExc_MemoryError, "relax_xdsl: a result's size overflows 64 bits (allocation limit exceeded)");
      return NULL;
    }
  }
  if (!data || size == 0) { free(data); return PyArray_SimpleNew(rank, dims, typenum); }
  PyObject* array = PyArray_SimpleNewFromData(rank, dims, typenum, data);
  if (!array) { free(data); return NULL; }
  PyObject* owner = PyCapsule_New(data, "relax_xdsl.buffer", rxpy_release);
  if (!owner) { Py_DECREF(array); free(data); return NULL; }
  if (PyArray_SetBaseObject((PyArrayObject*)array, owner) < 0) { Py_DECREF(array); return NULL; }
  return array;
}
/* The array as the C function takes it, or NULL. */
static PyArrayObject* rxpy_plain(PyObject* o, int typenum, int rank) {
  if (!PyArray_CheckExact(o)) return NULL;
  PyArrayObject* a = (PyArrayObject*)o;
  if (PyArray_TYPE(a) != typenum || PyArray_NDIM(a) != rank || !PyArray_ISNOTSWAPPED(a) ||
      (PyArray_FLAGS(a) & (NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED)) != (NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED))
    return NULL;
  return a;
}
/* 1 when every byte of a bool array is 0 or 1; other bytes (numpy does not
   check them) take the Python path, which normalises them to True. */
static int rxpy_bools(PyArrayObject* a) {
  const unsigned char* p = (const unsigned char*)PyArray_DATA(a);
  npy_intp n = PyArray_SIZE(a);
  unsigned char any = 0;
  for (npy_intp i = 0; i < n; ++i) any |= p[i];
  return any <= 1;
}
"""


@cache
def helper_names() -> frozenset[str]:
    """The `rx...` names the C runtime of a library defines (the emitter's
    prelude and these entry points): no library symbol may take one."""
    return frozenset(re.findall(r"\brx\w*", PRELUDE + _RUNTIME))


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
    """The C text appended to a library: the entry points and
    `rxpy_functions(table)`, which returns {entry point's C name (c_names.ENTRY):
    callable} bound to one module's constants table (keys in C text are
    identifiers, never names from the IR)."""
    entries = [_entry(sig) for sig in signatures.values() if _fixed_typenums(sig)]
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
