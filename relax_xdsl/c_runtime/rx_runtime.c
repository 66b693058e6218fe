/* relax_xdsl's C runtime: errors, limits, allocation, the memory pool and
   debug-mode bounds failures (declared in rx_runtime.h). */
#include "rx_runtime.h"

_Thread_local char rx_err[512];
RX_API const char* rx_last_error(void) { return rx_err; }
RX_API void rx_free(void* p) { free(p); }
int rx_fail(const char* msg) {
  strncpy(rx_err, msg, sizeof rx_err - 1);
  rx_err[sizeof rx_err - 1] = 0;
  return 1;
}
int rx_fail_index(const char* what, int64_t i, int64_t n) {
  snprintf(rx_err, sizeof rx_err, "%s: index %lld is out of range for an axis of extent %lld", what, (long long)i,
           (long long)n);
  return 1;
}

static int64_t rx_max_alloc = INT64_MAX;
RX_API void rx_set_max_alloc(int64_t bytes) { rx_max_alloc = bytes; }
_Thread_local int64_t rx_depth = 0;
int64_t rx_max_depth = 1000;
RX_API void rx_set_max_depth(int64_t n) { rx_max_depth = n; }
int rx_fail_depth(const char* what) {
  snprintf(rx_err, sizeof rx_err, "%s: recursion deeper than %lld nested calls (RELAX_XDSL_MAX_RECURSION_DEPTH)", what,
           (long long)rx_max_depth);
  return 1;
}

int64_t rx_max_loop = INT64_C(1) << 31;
RX_API void rx_set_max_loop(int64_t n) { rx_max_loop = n; }
int rx_fail_loop(const char* what) {
  snprintf(rx_err, sizeof rx_err, "%s: more iterations than %lld (RELAX_XDSL_MAX_LOOP_ITERATIONS)", what,
           (long long)rx_max_loop);
  return 1;
}

void* rx_alloc(int64_t n, int64_t size, const char* what) {
  void* p = NULL;
  if (n < 0) {
    snprintf(rx_err, sizeof rx_err, "%s: allocation limit exceeded: its element count is negative or overflows 64 bits "
             "(RELAX_XDSL_MAX_ALLOC_BYTES is %lld bytes)", what, (long long)rx_max_alloc);
    return NULL;
  }
  if (size > 0 && n > INT64_MAX / size) {
    snprintf(rx_err, sizeof rx_err, "%s: allocation limit exceeded: %lld elements of %lld bytes overflow a 64-bit size "
             "(RELAX_XDSL_MAX_ALLOC_BYTES is %lld bytes)", what, (long long)n, (long long)size, (long long)rx_max_alloc);
    return NULL;
  }
  if (n * size > rx_max_alloc) {
    snprintf(rx_err, sizeof rx_err, "%s: allocation limit exceeded: a buffer of %lld bytes, above the limit of %lld "
             "bytes (RELAX_XDSL_MAX_ALLOC_BYTES)", what, (long long)(n * size), (long long)rx_max_alloc);
    return NULL;
  }
  if (posix_memalign(&p, 64, (size_t)(n * size > 0 ? n * size : 64)) != 0) {
    snprintf(rx_err, sizeof rx_err, "%s: out of memory: cannot allocate %lld bytes", what, (long long)(n * size));
    return NULL;
  }
  return p;
}

void* rx_pool_take(rx_pool* c, int64_t bytes, const char* what) {
  if (__atomic_exchange_n(&c->busy, 1, __ATOMIC_ACQUIRE)) return rx_alloc(bytes, 1, what);
  if (c->p && c->bytes >= bytes) return c->p;
  free(c->p);
  c->p = rx_alloc(bytes, 1, what);
  c->bytes = c->p ? bytes : 0;
  if (!c->p) __atomic_store_n(&c->busy, 0, __ATOMIC_RELEASE);
  return c->p;
}
void rx_pool_give(rx_pool* c, void* p) {
  if (p == __atomic_load_n(&c->p, __ATOMIC_RELAXED)) __atomic_store_n(&c->busy, 0, __ATOMIC_RELEASE);
  else free(p);
}

static char rx_oob[512];
static int rx_oob_flag = 0;
RX_API const char* rx_debug_error(void) { return rx_oob_flag ? rx_oob : NULL; }
RX_API void rx_debug_reset(void) { rx_oob_flag = 0; }
int64_t rx_bound_failed(int64_t i, int64_t n, const char* where, int dim) {
  if (!__atomic_exchange_n(&rx_oob_flag, 1, __ATOMIC_SEQ_CST))
    snprintf(rx_oob, sizeof rx_oob, "out-of-bounds access in %s dim %d: index %lld not in [0, %lld)", where, dim,
             (long long)i, (long long)n);
  return 0;
}
