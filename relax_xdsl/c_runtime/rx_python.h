/* CPython entry points of a module library (relax_xdsl/backend/c_python.py
   generates one per function, after this header): wrapping results as numpy
   arrays that own their buffers, and checking arrays are taken as they are.
   Compiled into each module (it needs the Python and numpy headers and
   ABI of the process that builds it), never into the runtime archive. */
#ifndef RX_PYTHON_H
#define RX_PYTHON_H
#include "rx_runtime.h"
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
#endif /* RX_PYTHON_H */
