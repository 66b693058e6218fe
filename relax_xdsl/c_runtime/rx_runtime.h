/* relax_xdsl's C runtime: what every generated module includes.

   Generated code (relax_xdsl/backend/c_emitter.py) includes this header and
   is linked with rx_runtime.c (and rx_blas.c when it calls BLAS), compiled
   once per machine and flag set into a cached archive
   (relax_xdsl/backend/c_runtime.py). The small helpers are static inline
   here so generated loops inline and vectorize them; state and anything
   with a slow path lives in rx_runtime.c.

   Visibility: the archive is built with -fvisibility=hidden; RX_API marks
   the few functions a host (Python's ctypes, or an AOT application through
   model.h) looks up in a module library. */
#ifndef RX_RUNTIME_H
#define RX_RUNTIME_H
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdio.h>

#define RX_API __attribute__((visibility("default")))

/* ---- errors: one message per thread, read after a call returns 1 ---- */
RX_API const char* rx_last_error(void);
RX_API void rx_free(void* p);
extern _Thread_local char rx_err[512];
int rx_fail(const char* msg);
/* A gather index outside [-n, n): the text of errors.index_out_of_range,
   which backend/c.py raises as a BoundsError. */
int rx_fail_index(const char* what, int64_t i, int64_t n);

/* ---- exported libraries (relax_xdsl/deploy.py) ---- */
/* Defined only in a library written by export_library: its constants
   table (the `rx_g` every function takes, the weights as read-only data)
   and its manifest (JSON: entry points, signatures, dtypes, pipeline,
   target CPU), `*size` bytes long. */
RX_API const void* const* rx_exported_table(void);
RX_API const char* rx_manifest(int64_t* size);

/* ---- limits ---- */
RX_API void rx_set_max_alloc(int64_t bytes);
/* Calls between functions that call each other in a cycle (recursion)
   count their nesting per thread, so recursive input cannot overflow the C
   stack: past rx_max_depth the call fails with the words of
   limits.RECURSION_TOO_DEEP (a ResourceLimitError in backend/c.py). */
extern _Thread_local int64_t rx_depth;
extern int64_t rx_max_depth;
RX_API void rx_set_max_depth(int64_t n);
int rx_fail_depth(const char* what);
/* Each graph loop (scf.while) counts its iterations: past rx_max_loop it
   fails with the words of limits.LOOP_TOO_LONG (a ResourceLimitError). */
extern int64_t rx_max_loop;
RX_API void rx_set_max_loop(int64_t n);
int rx_fail_loop(const char* what);

/* ---- buffers ---- */
/* Control flow (scf.if / scf.while results, call results) can hold one
   buffer in several of a function's rx_owned slots: freeing it clears
   every slot holding it, and the error path frees each buffer once. */
/* A library conv's epilogue on one value (conv_library.activation_code):
   0 none, 1 relu, 2 relu6 (clip to [0, 6]); NaN stays NaN, as relax.relu
   and relax.clip keep it. */
static inline float rx_conv_act(float v, int act) {
  if (act && v < 0.0f) v = 0.0f;
  if (act == 2 && v > 6.0f) v = 6.0f;
  return v;
}

static inline void rx_disown(void** owned, int n, const void* p) {
  for (int k = 0; k < n; ++k)
    if (owned[k] == p) owned[k] = NULL;
}
static inline void rx_free_owned(void** owned, int n) {
  for (int k = 0; k < n; ++k)
    if (owned[k]) {
      void* p = owned[k];
      rx_disown(owned, n, p);
      free(p);
    }
}
/* The product of a buffer's dims, or -1 when one is negative or it overflows
   64 bits (rx_alloc reports both). */
static inline int64_t rx_count(int rank, const int64_t* dims) {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i)
    if (dims[i] < 0 || __builtin_mul_overflow(n, dims[i], &n)) return -1;
  return n;
}
/* A buffer of n elements of `size` bytes, 64-byte aligned; NULL with the
   error message set when the count overflows, exceeds the allocation limit
   or malloc fails. */
void* rx_alloc(int64_t n, int64_t size, const char* what);
/* Memory planning's pool (a memref.alloc marked relax.pool), kept across
   calls: one cached block per host function, grown when a call needs more.
   One call at a time holds it; a concurrent call allocates a block of its
   own, freed when it returns. */
typedef struct { void* p; int64_t bytes; int busy; } rx_pool;
void* rx_pool_take(rx_pool* c, int64_t bytes, const char* what);
void rx_pool_give(rx_pool* c, void* p);

/* ---- debug mode: a checked index ---- */
/* Out of bounds, the first violation is recorded (rx_debug_error) and 0 is
   used instead, so nothing is read or written outside the buffer; the call
   then fails. */
RX_API const char* rx_debug_error(void);
RX_API void rx_debug_reset(void);
int64_t rx_bound_failed(int64_t i, int64_t n, const char* where, int dim);
static inline int64_t rx_bound(int64_t i, int64_t n, const char* where, int dim) {
  if (__builtin_expect(i >= 0 && i < n, 1)) return i;
  return rx_bound_failed(i, n, where, dim);
}

/* ---- scalar semantics ---- */
/* Vectorizable float32 exp, erf and tanh (gcc vectorizes loops calling these;
   libm's expf/erff are scalar calls). exp: within 1 ulp, with IEEE
   overflow to inf, gradual underflow to 0 and NaN passed through; erf:
   within 3 ulp (x * P(x^2) below 1, 1 - exp(-x^2) Q(x) up to 4, +-1
   beyond; coefficients are Chebyshev fits in double rounded to float). */
static inline float rx_pow2i(int32_t k) {
  int32_t bits = (k + 127) << 23;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}
static inline float rx_expf(float x) {
  float xc = x > 89.0f ? 89.0f : (x >= -104.0f ? x : -104.0f);
  float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
  float r = xc - k * 0.693145751953125f - k * 1.42860682030941723212e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t ki = (int32_t)k;
  int32_t k1 = ki >> 1;
  float res = p * rx_pow2i(k1) * rx_pow2i(ki - k1);
  return x != x ? x : res;
}
static inline float rx_erff(float x) {
  float a = fabsf(x), t = a * a;
  float s = -0.0005654111737385392f;
  s = s * t + 0.00492328405380249f;
  s = s * t - 0.02671639621257782f;
  s = s * t + 0.11280365288257599f;
  s = s * t - 0.37612348794937134f;
  s = s * t + 1.1283791065216064f;
  float u = (a < 4.0f ? a : 4.0f) - 2.5f;
  float q = 1.6718327060516458e-06f;
  q = q * u - 6.3862098613753915e-06f;
  q = q * u + 1.4353506230690982e-05f;
  q = q * u - 5.358525231713429e-05f;
  q = q * u + 0.00021297235798556358f;
  q = q * u - 0.0007389984093606472f;
  q = q * u + 0.002465982222929597f;
  q = q * u - 0.007999344728887081f;
  q = q * u + 0.024938203394412994f;
  q = q * u - 0.0743476003408432f;
  q = q * u + 0.21080635488033295f;
  float big = a < 4.0f ? 1.0f - rx_expf(-(t < 16.0f ? t : 16.0f)) * q : 1.0f;
  float r = a < 1.0f ? x * s : copysignf(big, x);
  return x != x ? x : r;
}
/* gelu as relax.gelu's legalization computes it: x/2 * (1 + erf(x / sqrt 2)).
   The library dense layers (rx_blas.c, rx_dnnl.c) apply it after the GEMM. */
static inline float rx_gelu(float v) { return (0.5f * v) * (1.0f + rx_erff(v / 1.41421353816986083984375f)); }
/* tanh within 3 ulp: x * P(x^2) below 0.625 (a fit of tanh(x)/x, no
   cancellation near 0), 1 - 2 / (exp(2|x|) + 1) with the sign above it,
   +-1 from 9 on; NaN passed through. */
static inline float rx_tanhf(float x) {
  float a = fabsf(x), t = a * a;
  float p = 0.0021285086404532194f;
  p = p * t - 0.008159114979207516f;
  p = p * t + 0.02169182151556015f;
  p = p * t - 0.053944699466228485f;
  p = p * t + 0.13333183526992798f;
  p = p * t - 0.333333283662796f;
  p = p * t + 1.0f;
  float big = 1.0f - 2.0f / (rx_expf(2.0f * (a < 9.0f ? a : 9.0f)) + 1.0f);
  float r = a < 0.625f ? x * p : copysignf(big, x);
  return x != x ? x : r;
}
static inline int64_t rx_floordiv(int64_t a, int64_t b) {
  if (b == 0) return 0;
  if (a == INT64_MIN && b == -1) return a;
  int64_t q = a / b; return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
static inline int64_t rx_ceildiv(int64_t a, int64_t b) {
  if (b == 0) return 0;
  if (a == INT64_MIN && b == -1) return a;
  int64_t q = a / b; return (a % b != 0 && ((a < 0) == (b < 0))) ? q + 1 : q;
}
static inline int64_t rx_div(int64_t a, int64_t b) { return b == 0 ? 0 : (a == INT64_MIN && b == -1) ? a : a / b; }
static inline int64_t rx_rem(int64_t a, int64_t b) { return (b == 0 || b == -1) ? 0 : a % b; }
/* float -> signed int, defined for every input (C leaves NaN and values out
   of range undefined): NaN gives 0, values beyond the type saturate to its
   minimum / maximum, the rest truncate toward zero. The evaluator's astype
   reference and the interpreter do the same. The bounds are powers of two,
   exact in double (and every float16 / float32 converts to double exactly). */
static inline int64_t rx_fptosi64(double x) {
  return x != x ? 0 : x >= 9223372036854775808.0 ? INT64_MAX : x < -9223372036854775808.0 ? INT64_MIN : (int64_t)x;
}
static inline int32_t rx_fptosi32(double x) {
  return x != x ? 0 : x >= 2147483648.0 ? INT32_MAX : x < -2147483648.0 ? INT32_MIN : (int32_t)x;
}
static inline int16_t rx_fptosi16(double x) {
  return x != x ? 0 : x >= 32768.0 ? INT16_MAX : x < -32768.0 ? INT16_MIN : (int16_t)x;
}
static inline int8_t rx_fptosi8(double x) { return x != x ? 0 : x >= 128.0 ? INT8_MAX : x < -128.0 ? INT8_MIN : (int8_t)x; }
/* float -> unsigned int likewise: NaN and values below 0 give 0, values
   beyond the type its maximum. */
static inline uint64_t rx_fptoui64(double x) {
  return x != x || x <= 0.0 ? 0 : x >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)x;
}
static inline uint32_t rx_fptoui32(double x) { return x != x || x <= 0.0 ? 0 : x >= 4294967296.0 ? UINT32_MAX : (uint32_t)x; }
static inline uint16_t rx_fptoui16(double x) { return x != x || x <= 0.0 ? 0 : x >= 65536.0 ? UINT16_MAX : (uint16_t)x; }
static inline uint8_t rx_fptoui8(double x) { return x != x || x <= 0.0 ? 0 : x >= 256.0 ? UINT8_MAX : (uint8_t)x; }
/* bfloat16: the upper 16 bits of a float32, computed in float. A value is
   rounded to bfloat16 (nearest, ties to even; NaN stays a quiet NaN) where
   it is computed, so loads widen exactly and stores keep the upper bits. */
static inline float rx_bf16_round(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  u = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x00400000u) & 0xffff0000u : (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  memcpy(&f, &u, sizeof f);
  return f;
}
static inline float rx_bf16_load(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static inline uint16_t rx_bf16_bits(float f) {
  f = rx_bf16_round(f);
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return (uint16_t)(u >> 16);
}
/* NaN-propagating max / min as selects (a NaN a is kept; a NaN b fails the
   comparison and is taken), so loops using them vectorize; as reductions
   (a row max) they are declared for `omp simd reduction` (exact: max and min
   do not round, so any order gives the same value). */
static inline double rx_maxf(double a, double b) { double m = a > b ? a : b; return a != a ? a : m; }
static inline double rx_minf(double a, double b) { double m = a < b ? a : b; return a != a ? a : m; }
static inline float rx_maxff(float a, float b) { float m = a > b ? a : b; return a != a ? a : m; }
static inline float rx_minff(float a, float b) { float m = a < b ? a : b; return a != a ? a : m; }
#pragma omp declare reduction(rxr_maxf : double : omp_out = rx_maxf(omp_out, omp_in)) initializer(omp_priv = -INFINITY)
#pragma omp declare reduction(rxr_minf : double : omp_out = rx_minf(omp_out, omp_in)) initializer(omp_priv = INFINITY)
#pragma omp declare reduction(rxr_maxff : float : omp_out = rx_maxff(omp_out, omp_in)) initializer(omp_priv = -INFINITY)
#pragma omp declare reduction(rxr_minff : float : omp_out = rx_minff(omp_out, omp_in)) initializer(omp_priv = INFINITY)
#endif /* RX_RUNTIME_H */
