/* The C API of a model built by `relax-xdsl build` (the fixed part of
   model.h; the per-model entry points follow it in model.h).

   A tensor is described, not owned, by rx_tensor: the caller keeps its
   inputs' data and shapes; outputs are filled with buffers the library
   allocated, released with model_tensor_free. Data is C order (row-major),
   densely packed, in the machine's byte order. */
#ifndef RX_MODEL_API_H
#define RX_MODEL_API_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types (relax_xdsl.dtypes). RX_BOOL elements are bytes holding 0
   or 1 (any other byte is refused); RX_FLOAT16 is IEEE binary16,
   RX_BFLOAT16 the upper 16 bits of a float32. */
typedef enum {
  RX_FLOAT16 = 1,
  RX_BFLOAT16 = 2,
  RX_FLOAT32 = 3,
  RX_FLOAT64 = 4,
  RX_INT8 = 5,
  RX_INT16 = 6,
  RX_INT32 = 7,
  RX_INT64 = 8,
  RX_UINT8 = 9,
  RX_UINT16 = 10,
  RX_UINT32 = 11,
  RX_UINT64 = 12,
  RX_BOOL = 13
} rx_dtype;

typedef struct {
  void* data;     /* the elements; may be NULL when there are none */
  int32_t dtype;  /* an rx_dtype */
  int32_t ndim;   /* the rank; 0 for a scalar */
  int64_t* shape; /* ndim extents, each >= 0; may be NULL when ndim is 0 */
} rx_tensor;

/* Why the last call on this thread that returned nonzero failed (one line,
   naming the entry point, the input, the dim and the expected value or the
   limit exceeded). Valid until the next call on the same thread. */
const char* model_last_error(void);

/* Frees an output's data and shape (filled by an entry point) and clears
   the struct; NULL or a cleared tensor is accepted. */
void model_tensor_free(rx_tensor* t);

/* The bytes of one element of `dtype`, or 0 for a value that is no rx_dtype. */
int64_t model_dtype_size(int32_t dtype);

/* The numpy name of `dtype` ("float32", ...), or "unknown". */
const char* model_dtype_name(int32_t dtype);

/* Caps every buffer one call may allocate, in bytes (default: no cap but
   memory); a call that would exceed it fails with "allocation limit
   exceeded". Set it before calling from several threads. */
void model_set_max_alloc(int64_t bytes);

#ifdef __cplusplus
}
#endif
#endif /* RX_MODEL_API_H */
