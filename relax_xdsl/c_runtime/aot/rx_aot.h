/* What the generated entry points of a `relax-xdsl build` library use
   (internal: model.h is the public API). Each entry point is described by
   tables (rx_aot_entry) emitted per model; the checks and the output
   handling are here, written once. */
#ifndef RX_AOT_H
#define RX_AOT_H
#include "model_api.h"
#include "rx_runtime.h"

/* One input of an entry point, as the compiled function takes it. */
typedef struct {
  const char* name;    /* the graph parameter's name */
  int32_t dtype;       /* an rx_dtype */
  int32_t ndim;
  const int64_t* dims; /* ndim extents; -1 where the dim is symbolic (the generated code checks it) */
} rx_aot_param;

typedef struct {
  const char* function; /* the entry point's C name (model_...), for errors */
  int n_inputs;
  const rx_aot_param* inputs;
  int n_outputs;
  const int32_t* out_dtypes;
  const int32_t* out_ndims;
} rx_aot_entry;

/* 0 when `inputs` match `e` (count, dtype, rank, static dims, dims >= 0,
   data present when nonempty, bool bytes 0 or 1) and `outputs` has room for
   e->n_outputs tensors (which are cleared); else 1 with the error set. */
#define RX_AOT_HIDDEN __attribute__((visibility("hidden")))
RX_AOT_HIDDEN int rx_aot_check(const rx_aot_entry* e, const rx_tensor* inputs, int n_inputs, rx_tensor* outputs,
                               int n_outputs);

/* Moves the compiled function's results (data[k], with dims[k] holding
   out_ndims[k] extents) into `outputs`; 0, or 1 with every result freed and
   `outputs` cleared when a shape cannot be allocated. */
RX_AOT_HIDDEN int rx_aot_outputs(const rx_aot_entry* e, void** data, int64_t* const* dims, rx_tensor* outputs);

#endif /* RX_AOT_H */
