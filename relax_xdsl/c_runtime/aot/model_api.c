/* The fixed part of a `relax-xdsl build` library's C API (model_api.h) and
   the checks its generated entry points share (rx_aot.h). Compiled into
   libmodel.so with the generated code; errors go through the runtime's
   thread-local message (rx_last_error), so each thread reads its own. */
#include "rx_aot.h"

#define MODEL_API __attribute__((visibility("default")))

MODEL_API const char* model_last_error(void) { return rx_last_error(); }

MODEL_API void model_set_max_alloc(int64_t bytes) { rx_set_max_alloc(bytes); }

MODEL_API void model_tensor_free(rx_tensor* t) {
  if (!t) return;
  free(t->data);
  free(t->shape);
  t->data = NULL;
  t->shape = NULL;
  t->ndim = 0;
}

MODEL_API int64_t model_dtype_size(int32_t dtype) {
  switch (dtype) {
    case RX_FLOAT16: case RX_BFLOAT16: case RX_INT16: case RX_UINT16: return 2;
    case RX_FLOAT32: case RX_INT32: case RX_UINT32: return 4;
    case RX_FLOAT64: case RX_INT64: case RX_UINT64: return 8;
    case RX_INT8: case RX_UINT8: case RX_BOOL: return 1;
    default: return 0;
  }
}

MODEL_API const char* model_dtype_name(int32_t dtype) {
  switch (dtype) {
    case RX_FLOAT16: return "float16";
    case RX_BFLOAT16: return "bfloat16";
    case RX_FLOAT32: return "float32";
    case RX_FLOAT64: return "float64";
    case RX_INT8: return "int8";
    case RX_INT16: return "int16";
    case RX_INT32: return "int32";
    case RX_INT64: return "int64";
    case RX_UINT8: return "uint8";
    case RX_UINT16: return "uint16";
    case RX_UINT32: return "uint32";
    case RX_UINT64: return "uint64";
    case RX_BOOL: return "bool";
    default: return "unknown";
  }
}

static int check_input(const rx_aot_entry* e, int k, const rx_tensor* t) {
  const rx_aot_param* p = &e->inputs[k];
  if (t->dtype != p->dtype) {
    snprintf(rx_err, sizeof rx_err, "%s: input %d (%s): expected dtype %s, got %s (%d)", e->function, k, p->name,
             model_dtype_name(p->dtype), model_dtype_name(t->dtype), (int)t->dtype);
    return 1;
  }
  if (t->ndim != p->ndim) {
    snprintf(rx_err, sizeof rx_err, "%s: input %d (%s): expected rank %d, got %d", e->function, k, p->name,
             (int)p->ndim, (int)t->ndim);
    return 1;
  }
  if (t->ndim > 0 && !t->shape) {
    snprintf(rx_err, sizeof rx_err, "%s: input %d (%s): shape is NULL", e->function, k, p->name);
    return 1;
  }
  int64_t count = 1;
  for (int32_t i = 0; i < t->ndim; ++i) {
    int64_t d = t->shape[i];
    if (d < 0) {
      snprintf(rx_err, sizeof rx_err, "%s: input %d (%s) dim %d: extent %lld is negative", e->function, k,
               p->name, (int)i, (long long)d);
      return 1;
    }
    if (p->dims[i] >= 0 && d != p->dims[i]) {
      snprintf(rx_err, sizeof rx_err, "%s: input %d (%s) dim %d: expected %lld, got %lld", e->function, k,
               p->name, (int)i, (long long)p->dims[i], (long long)d);
      return 1;
    }
    if (__builtin_mul_overflow(count, d, &count) || count > INT64_MAX / 8) {
      snprintf(rx_err, sizeof rx_err, "%s: input %d (%s): its element count overflows 64 bits", e->function, k,
               p->name);
      return 1;
    }
  }
  if (count > 0 && !t->data) {
    snprintf(rx_err, sizeof rx_err, "%s: input %d (%s): data is NULL for %lld elements", e->function, k, p->name,
             (long long)count);
    return 1;
  }
  if (p->dtype == RX_BOOL) {
    const unsigned char* b = (const unsigned char*)t->data;
    for (int64_t i = 0; i < count; ++i)
      if (b[i] > 1) {
        snprintf(rx_err, sizeof rx_err, "%s: input %d (%s): bool element %lld is the byte %d, not 0 or 1",
                 e->function, k, p->name, (long long)i, (int)b[i]);
        return 1;
      }
  }
  return 0;
}

int rx_aot_check(const rx_aot_entry* e, const rx_tensor* inputs, int n_inputs, rx_tensor* outputs, int n_outputs) {
  if (n_inputs != e->n_inputs || (n_inputs > 0 && !inputs)) {
    snprintf(rx_err, sizeof rx_err, "%s takes %d inputs, got %d%s", e->function, e->n_inputs, n_inputs,
             n_inputs > 0 && !inputs ? " (inputs is NULL)" : "");
    return 1;
  }
  if (n_outputs != e->n_outputs || (n_outputs > 0 && !outputs)) {
    snprintf(rx_err, sizeof rx_err, "%s gives %d outputs, room for %d was passed%s", e->function, e->n_outputs,
             n_outputs, n_outputs > 0 && !outputs ? " (outputs is NULL)" : "");
    return 1;
  }
  for (int k = 0; k < n_inputs; ++k)
    if (check_input(e, k, &inputs[k])) return 1;
  for (int k = 0; k < n_outputs; ++k) {
    outputs[k].data = NULL;
    outputs[k].shape = NULL;
    outputs[k].dtype = e->out_dtypes[k];
    outputs[k].ndim = 0;
  }
  return 0;
}

int rx_aot_outputs(const rx_aot_entry* e, void** data, int64_t* const* dims, rx_tensor* outputs) {
  for (int k = 0; k < e->n_outputs; ++k) {
    int32_t n = e->out_ndims[k];
    int64_t* shape = (int64_t*)malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (!shape) {
      for (int j = 0; j < k; ++j) model_tensor_free(&outputs[j]);
      for (int j = k; j < e->n_outputs; ++j) free(data[j]);
      snprintf(rx_err, sizeof rx_err, "%s: out of memory for output %d's shape", e->function, k);
      return 1;
    }
    if (n > 0) memcpy(shape, dims[k], sizeof(int64_t) * (size_t)n);
    outputs[k].data = data[k];
    outputs[k].shape = shape;
    outputs[k].dtype = e->out_dtypes[k];
    outputs[k].ndim = n;
  }
  return 0;
}
