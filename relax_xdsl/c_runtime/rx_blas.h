/* relax_xdsl's BLAS library functions (relax_xdsl/blas.py registers them):
   matmuls and dense layers on scipy-openblas32's SGEMM / SGEMV, register
   tiles for GEMMs of a few rows, and conv2d as im2col or shifted windows
   then one GEMM; dense layers on weights packed when compiling. Defined in
   rx_blas.c and rx_packed.c, part of the runtime archive when
   scipy-openblas32 is installed.

   Each function follows the library calling convention
   (relax_xdsl/libraries.py): data pointers (inputs, then outputs), then
   every dim of every buffer in the same order. conv2d's strides and
   paddings are arguments of rx_blas_conv2d; blas.py's small wrapper per
   (strides, padding, epilogue) passes them as constants. */
#ifndef RX_BLAS_H
#define RX_BLAS_H
#include "rx_runtime.h"
#include <omp.h>

/* GEMMs of 2..RX_SMALL_GEMM_ROWS rows run in register tiles reading the
   weights in place (rx_sgemm_small): SGEMM would pack all of B on every
   call to use it a few times. Only where those tiles fit the registers
   (AVX-512; RX_TEST_SMALL_GEMM forces them, for their tests). */
#ifndef RX_SMALL_GEMM_ROWS
#define RX_SMALL_GEMM_ROWS 32
#endif
/* Below this many flops, and this many bytes of operands, a BLAS call runs
   on the calling thread: an OpenMP region costs more than it saves. */
#ifndef RX_SMALL_GEMM_FLOPS
#define RX_SMALL_GEMM_FLOPS 4000000.0
#endif
#ifndef RX_SPLIT_BYTES
#define RX_SPLIT_BYTES 262144.0
#endif

/* Shared by rx_blas.c and rx_packed.c. */
/* How many OpenMP threads `batch` products of (m x k) @ (k x n) are split
   over: 1 when they are small in flops and in bytes of operands, or inside
   a parallel region (no nested teams). The bytes count for memory-bound
   products: a decode step's q @ K^T and p @ V over a whole KV cache do few
   flops per byte, and one thread cannot draw the memory bandwidth two do. */
static inline int rx_blas_threads(int64_t batch, int64_t m, int64_t n, int64_t k) {
  double flops = 2.0 * batch * m * n * k;
  double bytes = 4.0 * batch * ((double)m * k + (double)k * n + (double)m * n);
  if ((flops < RX_SMALL_GEMM_FLOPS && bytes < RX_SPLIT_BYTES) || omp_in_parallel()) return 1;
  int t = omp_get_max_threads();
  return t > 1 ? t : 1;
}

enum { RX_ACT_NONE, RX_ACT_RELU, RX_ACT_GELU };

static inline void rx_activate(float* C, int64_t count, int act) {
  if (act == RX_ACT_RELU)  /* NaN stays NaN, as relax.relu's maximum(x, 0) */
    for (int64_t i = 0; i < count; ++i) { float v = C[i]; C[i] = v < 0.0f ? 0.0f : v; }
  else if (act == RX_ACT_GELU)  /* as relax.gelu's legalization computes it */
    for (int64_t i = 0; i < count; ++i) C[i] = rx_gelu(C[i]);
}

/* x1 @ x2 for each offloaded rank pair (blas.MATMUL_RANKS): x1's leading
   dims folded into the rows when x2 is a matrix, else one strided batch. */
void rx_blas_matmul_2x2(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t b0, int64_t b1, int64_t c0,
                        int64_t c1);
void rx_blas_matmul_3x2(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t b0, int64_t b1,
                        int64_t c0, int64_t c1, int64_t c2);
void rx_blas_matmul_4x2(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t a3, int64_t b0,
                        int64_t b1, int64_t c0, int64_t c1, int64_t c2, int64_t c3);
void rx_blas_matmul_3x3(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t b0, int64_t b1,
                        int64_t b2, int64_t c0, int64_t c1, int64_t c2);
void rx_blas_matmul_4x4(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t a3, int64_t b0,
                        int64_t b1, int64_t b2, int64_t b3, int64_t c0, int64_t c1, int64_t c2, int64_t c3);

/* x1 @ swapaxes(x2, -1, -2) with x2 stored as it is (blas.MATMUL_T_RANKS):
   the transpose is BLAS's flag, not a copy. */
void rx_blas_matmul_2x2_tb(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t b0, int64_t b1, int64_t c0,
                           int64_t c1);
void rx_blas_matmul_3x3_tb(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t b0, int64_t b1,
                           int64_t b2, int64_t c0, int64_t c1, int64_t c2);
void rx_blas_matmul_4x4_tb(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t a3, int64_t b0,
                           int64_t b1, int64_t b2, int64_t b3, int64_t c0, int64_t c1, int64_t c2, int64_t c3);

/* matmul(x, W) + bias, then the activation (blas.DENSE_ACTIVATIONS), x of
   rank 2, 3 or 4: rx_blas_dense_<rank>x2[_relu|_gelu]. */
#define RX_DENSE_DECLS(ACT) \
  void rx_blas_dense_2x2##ACT(float* A, float* B, float* D, float* C, int64_t a0, int64_t a1, int64_t b0, int64_t b1, \
                              int64_t d0, int64_t c0, int64_t c1); \
  void rx_blas_dense_3x2##ACT(float* A, float* B, float* D, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t b0, \
                              int64_t b1, int64_t d0, int64_t c0, int64_t c1, int64_t c2); \
  void rx_blas_dense_4x2##ACT(float* A, float* B, float* D, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t a3, \
                              int64_t b0, int64_t b1, int64_t d0, int64_t c0, int64_t c1, int64_t c2, int64_t c3);
RX_DENSE_DECLS()
RX_DENSE_DECLS(_relu)
RX_DENSE_DECLS(_gelu)
#undef RX_DENSE_DECLS

/* matmul(x, W) [+ bias [, then relu | gelu | + a residual R of the result's shape]] with W (k x n) a
   model constant packed when compiling (blas.pack_dense_weights: its full panels of 16
   columns, k rows of 16 each, then the last n % 16 columns as k rows), x of
   rank 2, 3 or 4: rx_blas_packed_dense_<rank>x2[_bias[_relu|_gelu|_add]]. */
#define RX_PACKED_BIAS_0
#define RX_PACKED_DIM_0
#define RX_PACKED_BIAS_1 float* D,
#define RX_PACKED_DIM_1 int64_t d0,
#define RX_PACKED_BIAS_2 float* D, float* R,
#define RX_PACKED_DIM_2 int64_t d0,
#define RX_PACKED_R_0_2
#define RX_PACKED_R_0_3
#define RX_PACKED_R_0_4
#define RX_PACKED_R_1_2
#define RX_PACKED_R_1_3
#define RX_PACKED_R_1_4
#define RX_PACKED_R_2_2 int64_t r0, int64_t r1,
#define RX_PACKED_R_2_3 int64_t r0, int64_t r1, int64_t r2,
#define RX_PACKED_R_2_4 int64_t r0, int64_t r1, int64_t r2, int64_t r3,
#define RX_PACKED_DECLS(VARIANT, B) \
  void rx_blas_packed_dense_2x2##VARIANT(float* A, float* W, RX_PACKED_BIAS_##B float* C, int64_t a0, int64_t a1, \
                                         int64_t b0, int64_t b1, RX_PACKED_DIM_##B RX_PACKED_R_##B##_2 int64_t c0, \
                                         int64_t c1); \
  void rx_blas_packed_dense_3x2##VARIANT(float* A, float* W, RX_PACKED_BIAS_##B float* C, int64_t a0, int64_t a1, \
                                         int64_t a2, int64_t b0, int64_t b1, RX_PACKED_DIM_##B RX_PACKED_R_##B##_3 \
                                         int64_t c0, int64_t c1, int64_t c2); \
  void rx_blas_packed_dense_4x2##VARIANT(float* A, float* W, RX_PACKED_BIAS_##B float* C, int64_t a0, int64_t a1, \
                                         int64_t a2, int64_t a3, int64_t b0, int64_t b1, RX_PACKED_DIM_##B \
                                         RX_PACKED_R_##B##_4 int64_t c0, int64_t c1, int64_t c2, int64_t c3);
RX_PACKED_DECLS(, 0)
RX_PACKED_DECLS(_bias, 1)
RX_PACKED_DECLS(_bias_relu, 1)
RX_PACKED_DECLS(_bias_gelu, 1)
RX_PACKED_DECLS(_bias_add, 2)
#undef RX_PACKED_DECLS

/* Y (n x o x oh x ow) = conv2d(X (n x c x h x w), W (o x c x kh x kw)),
   groups 1, dilation 1, top / left padding pt / pl (the bottom / right
   padding is implied by oh / ow), then + bias[oc] when `bias` is not NULL,
   then the activation `act` (rx_conv_act: 0 none, 1 relu, 2 relu6). */
void rx_blas_conv2d(const float* X, const float* W, const float* bias, float* Y, int64_t n, int64_t c, int64_t h,
                    int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh, int64_t ow, int64_t sh, int64_t sw,
                    int64_t pt, int64_t pl, int act);
/* relax.attention on float32, the heads among the batch: O (b0 x b1 x s x dv) =
   softmax(Q (b0 x b1 x s x d) @ K (b0 x b1 x t x d)^T * scale + bias) @ V
   (b0 x b1 x t x dv), all row-major; the bias is read at
   bst[0] * i0 + bst[1] * i1 + bst[2] * row + bst[3] * column (a stride of 0
   broadcasts). With zero_nan, NaN probabilities are 0. Blocks of query
   rows are split over OpenMP's threads; their scores stay in a buffer of
   the thread's (blas.py's wrapper per rank and bias rank calls this). */
void rx_blas_attention(const float* Q, const float* K, const float* V, const float* bias, const int64_t* bst,
                       float* O, int64_t b0, int64_t b1, int64_t s, int64_t t, int64_t d, int64_t dv, float scale,
                       int zero_nan);
#endif /* RX_BLAS_H */
