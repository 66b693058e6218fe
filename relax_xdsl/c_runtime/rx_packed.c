/* relax_xdsl's packed dense kernels (declared in rx_blas.h, registered by
   relax_xdsl/blas.py): a translation unit of their own, so the runtime
   archive's sources compile side by side. */
#include "rx_blas.h"

/* ---- dense layers on weights packed when compiling (blas.pack_dense_weights) ----
   SGEMM packs B into column panels on every call; a dense layer's weights
   are a model constant, so blas.py packs them once, when compiling, and
   these kernels read them as packed: W (k x n) is stored as its n / 16
   full panels of 16 columns, each k rows of 16 floats, then the last n % 16
   columns as k rows of n % 16 (the same k * n floats, no padding, so the
   buffer keeps W's type). The tail is read as it is, 16 floats from each
   of its rows of n % 16 (the lanes past the row read the next row and are
   never written out), but for its last 16 rows, whose reads would pass the
   buffer's end: those come from a zero-padded copy on the stack (16 x 16
   floats at most, made once per call). A register tile of 6 rows x 16 columns (12
   accumulators of 8 floats: AVX2's 16 registers hold them with the panel's
   two vectors and the broadcast of A) runs over all of k; A is read in
   place, rows of it a block at a time small enough to stay in L2 while
   every panel passes over them. */
typedef float rx_v8 __attribute__((vector_size(32), aligned(4)));
typedef int32_t rx_vi8 __attribute__((vector_size(32), aligned(4)));
#define RX_PANEL 16
#define RX_PANEL_ROWS 6

static inline rx_v8 rx_relu_v8(rx_v8 r) { return (rx_v8)((rx_vi8)r & ~(rx_vi8)(r < (rx_v8){0})); } /* NaN stays */

/* A panel: rows [0, k1) of 16 floats `ldp` apart from p (the tail's rows are n % 16 apart), then rows
   [k1, k) from q, 16 apart (the tail's last rows, zero-padded; NULL when k1 is k). */
typedef struct {
  const float* p;
  int64_t ldp, k1;
  const float* q;
} rx_panel;

/* C[0:MR, 0:16] = A[0:MR, :] @ P (k x 16) + bias16 (NULL: 0), relu'd when act is RX_ACT_RELU. */
static inline __attribute__((always_inline)) void rx_panel_tile(const int MR, int64_t K, const float* restrict A,
                                                                int64_t lda, rx_panel P, float* restrict C,
                                                                int64_t ldc, const float* bias16, int act) {
  rx_v8 c0[RX_PANEL_ROWS], c1[RX_PANEL_ROWS];
  rx_v8 d0 = bias16 ? *(const rx_v8*)bias16 : (rx_v8){0}, d1 = bias16 ? *(const rx_v8*)(bias16 + 8) : (rx_v8){0};
  for (int i = 0; i < MR; ++i) c0[i] = d0, c1[i] = d1;
  for (int64_t k = 0; k < P.k1; ++k) {
    rx_v8 b0 = *(const rx_v8*)(P.p + k * P.ldp), b1 = *(const rx_v8*)(P.p + k * P.ldp + 8);
    for (int i = 0; i < MR; ++i) {
      rx_v8 a = A[i * lda + k] - (rx_v8){0}; /* a splat, no add */
      c0[i] += a * b0;
      c1[i] += a * b1;
    }
  }
  for (int64_t k = P.k1; k < K; ++k) {
    const float* q = P.q + (k - P.k1) * RX_PANEL;
    rx_v8 b0 = *(const rx_v8*)q, b1 = *(const rx_v8*)(q + 8);
    for (int i = 0; i < MR; ++i) {
      rx_v8 a = A[i * lda + k] - (rx_v8){0};
      c0[i] += a * b0;
      c1[i] += a * b1;
    }
  }
  for (int i = 0; i < MR; ++i) {
    *(rx_v8*)(C + i * ldc) = act == RX_ACT_RELU ? rx_relu_v8(c0[i]) : c0[i];
    *(rx_v8*)(C + i * ldc + 8) = act == RX_ACT_RELU ? rx_relu_v8(c1[i]) : c1[i];
  }
}

/* One row: c[0:16] = a @ P + bias16, four sums over k (k mod 4) so the
   multiply-adds do not wait on each other. */
static inline __attribute__((always_inline)) void rx_panel_row(int64_t K, const float* restrict a, rx_panel P,
                                                               float* restrict c, const float* bias16, int act) {
  rx_v8 s[4][2] = {{{0}}};
  int64_t k = 0;
  for (; k + 4 <= P.k1; k += 4)
    for (int u = 0; u < 4; ++u) {
      rx_v8 x = a[k + u] - (rx_v8){0};
      s[u][0] += x * *(const rx_v8*)(P.p + (k + u) * P.ldp);
      s[u][1] += x * *(const rx_v8*)(P.p + (k + u) * P.ldp + 8);
    }
  for (; k < K; ++k) {
    const float* b = k < P.k1 ? P.p + k * P.ldp : P.q + (k - P.k1) * RX_PANEL;
    rx_v8 x = a[k] - (rx_v8){0};
    s[0][0] += x * *(const rx_v8*)b;
    s[0][1] += x * *(const rx_v8*)(b + 8);
  }
  for (int v = 0; v < 2; ++v) {
    rx_v8 r = (s[0][v] + s[1][v]) + (s[2][v] + s[3][v]);
    if (bias16) r += *(const rx_v8*)(bias16 + 8 * v);
    *(rx_v8*)(c + 8 * v) = act == RX_ACT_RELU ? rx_relu_v8(r) : r;
  }
}

/* One tile of `mr` rows (1 to 6) at `a` through the panel P into `out`: constant row counts, so each tile's
   accumulators stay in registers. */
static inline __attribute__((always_inline)) void rx_panel_tiles(int mr, int64_t K, const float* a, rx_panel P,
                                                                 float* out, int64_t ldc, const float* bias16,
                                                                 int act) {
  switch (mr) {
    case 6: rx_panel_tile(6, K, a, K, P, out, ldc, bias16, act); break;
    case 5: rx_panel_tile(5, K, a, K, P, out, ldc, bias16, act); break;
    case 4: rx_panel_tile(4, K, a, K, P, out, ldc, bias16, act); break;
    case 3: rx_panel_tile(3, K, a, K, P, out, ldc, bias16, act); break;
    case 2: rx_panel_tile(2, K, a, K, P, out, ldc, bias16, act); break;
    default: rx_panel_row(K, a, P, out, bias16, act); break;
  }
}

/* Rows [i0, i1) of C through one panel (16 columns starting at column j of C,
   the first w of them written: the narrower tail panel goes through a tile on
   the stack), in tiles of 6 rows and fewer for the last ones. A full panel's
   tiles are their own copies, with its constant row stride and no padded rows. */
__attribute__((noinline, noclone))  /* one copy: the activation is tested once per tile */
static void rx_panel_rows(int64_t i0, int64_t i1, int64_t K, const float* A, rx_panel P, const float* R, float* C,
                          int64_t n, int64_t j, int64_t w, const float* bias16, int act) {
  float tile[RX_PANEL_ROWS * RX_PANEL];
  for (int64_t i = i0; i < i1; i += RX_PANEL_ROWS) {
    int mr = i1 - i < RX_PANEL_ROWS ? (int)(i1 - i) : RX_PANEL_ROWS;
    const float* a = A + i * K;
    if (w == RX_PANEL) {
      rx_panel_tiles(mr, K, a, (rx_panel){P.p, RX_PANEL, K, NULL}, C + i * n + j, n, bias16, act);
    } else {
      rx_panel_tiles(mr, K, a, P, tile, RX_PANEL, bias16, act);
      for (int r = 0; r < mr; ++r) memcpy(C + (i + r) * n + j, tile + r * RX_PANEL, (size_t)w * sizeof(float));
    }
    if (R) /* the residual, while the tile is in cache */
      for (int r = 0; r < mr; ++r) {
        float* c = C + (i + r) * n + j;
        const float* add = R + (i + r) * n + j;
        for (int64_t jj = 0; jj < w; ++jj) c[jj] += add[jj];
      }
    if (act == RX_ACT_GELU)
      for (int r = 0; r < mr; ++r) rx_activate(C + (i + r) * n + j, w, act);
  }
}

/* Rows [i0, i1) x panels [p0, p1) of C = act(A @ W + D): row blocks whose
   A stays in L2, each through every panel of the range. `tail`: the last
   panel (n % 16 columns; unused when n is a multiple of 16). */
static void rx_packed_block(int64_t i0, int64_t i1, int64_t p0, int64_t p1, const float* A, const float* W,
                            rx_panel tail, const float* D, const float* dtail, const float* R, float* C, int64_t k,
                            int64_t n, int act) {
  int64_t full = n / RX_PANEL;
  int64_t mc = 131072 / (4 * (k > 0 ? k : 1)) / RX_PANEL_ROWS * RX_PANEL_ROWS;
  if (mc < RX_PANEL_ROWS) mc = RX_PANEL_ROWS;
  for (int64_t ic = i0; ic < i1; ic += mc) {
    int64_t ie = ic + mc < i1 ? ic + mc : i1;
    for (int64_t p = p0; p < p1; ++p) {
      if (p < full)
        rx_panel_rows(ic, ie, k, A, (rx_panel){W + p * k * RX_PANEL, RX_PANEL, k, NULL}, R, C, n, p * RX_PANEL,
                      RX_PANEL, D ? D + p * RX_PANEL : NULL, act);
      else
        rx_panel_rows(ic, ie, k, A, tail, R, C, n, p * RX_PANEL, n - p * RX_PANEL, D ? dtail : NULL, act);
    }
  }
}

/* C (m x n) = act(A (m x k) @ W + D + R) with W packed as above, D a row of n
   or NULL (no bias), R a residual of m x n or NULL (none). Split over OpenMP's threads when large
   (rx_blas_threads): by panels when there are enough of them for every
   thread or few rows, else by blocks of rows. */
__attribute__((noinline, noclone))  /* one copy for the twelve entry points (less to compile) */
static void rx_dense_packed(const float* A, const float* W, const float* D, const float* R, float* C, int64_t m,
                            int64_t k, int64_t n, int act) {
  if (m == 0 || n == 0) return;
  int64_t full = n / RX_PANEL, t = n - full * RX_PANEL, panels = full + (t > 0);
  /* the tail's last rows (at most 16) zero-padded: rows before them can read 16 floats in the buffer */
  float last[RX_PANEL * RX_PANEL] __attribute__((aligned(32))) = {0};
  float dtail[RX_PANEL] = {0};
  int64_t k1 = k - (k < RX_PANEL ? k : RX_PANEL);
  rx_panel tail = {W + full * RX_PANEL * k, t, k1, last};
  if (t > 0) {
    for (int64_t kk = k1; kk < k; ++kk)
      memcpy(last + (kk - k1) * RX_PANEL, tail.p + kk * t, (size_t)t * sizeof(float));
    if (D)
      for (int64_t jj = 0; jj < t; ++jj) dtail[jj] = D[full * RX_PANEL + jj];
  }
  int threads = rx_blas_threads(1, m, n, k);
  if (threads == 1) {
    rx_packed_block(0, m, 0, panels, A, W, tail, D, dtail, R, C, k, n, act);
  } else {
    #pragma omp parallel num_threads(threads)
    {
      int64_t nt = omp_get_num_threads(), th = omp_get_thread_num();
      if (panels >= 2 * nt || m < 2 * RX_PANEL_ROWS * nt) {
        rx_packed_block(0, m, panels * th / nt, panels * (th + 1) / nt, A, W, tail, D, dtail, R, C, k, n, act);
      } else {
        int64_t tiles = (m + RX_PANEL_ROWS - 1) / RX_PANEL_ROWS;
        int64_t i0 = tiles * th / nt * RX_PANEL_ROWS, i1 = tiles * (th + 1) / nt * RX_PANEL_ROWS;
        rx_packed_block(i0, i1 < m ? i1 : m, 0, panels, A, W, tail, D, dtail, R, C, k, n, act);
      }
    }
  }
}

#define RX_PACKED_DEFS(VARIANT, BIAS, CODE) \
  void rx_blas_packed_dense_2x2##VARIANT(float* A, float* W, RX_PACKED_BIAS_##BIAS float* C, int64_t a0, \
                                         int64_t a1, int64_t b0, int64_t b1, RX_PACKED_DIM_##BIAS \
                                         RX_PACKED_R_##BIAS##_2 int64_t c0, int64_t c1) { \
    rx_dense_packed(A, W, RX_PACKED_ARG_##BIAS, C, a0, b0, b1, CODE); \
  } \
  void rx_blas_packed_dense_3x2##VARIANT(float* A, float* W, RX_PACKED_BIAS_##BIAS float* C, int64_t a0, \
                                         int64_t a1, int64_t a2, int64_t b0, int64_t b1, RX_PACKED_DIM_##BIAS \
                                         RX_PACKED_R_##BIAS##_3 int64_t c0, int64_t c1, int64_t c2) { \
    rx_dense_packed(A, W, RX_PACKED_ARG_##BIAS, C, a0 * a1, b0, b1, CODE); \
  } \
  void rx_blas_packed_dense_4x2##VARIANT(float* A, float* W, RX_PACKED_BIAS_##BIAS float* C, int64_t a0, \
                                         int64_t a1, int64_t a2, int64_t a3, int64_t b0, int64_t b1, \
                                         RX_PACKED_DIM_##BIAS RX_PACKED_R_##BIAS##_4 int64_t c0, int64_t c1, \
                                         int64_t c2, int64_t c3) { \
    rx_dense_packed(A, W, RX_PACKED_ARG_##BIAS, C, a0 * a1 * a2, b0, b1, CODE); \
  }
#define RX_PACKED_ARG_0 NULL, NULL
#define RX_PACKED_ARG_1 D, NULL
#define RX_PACKED_ARG_2 D, R
RX_PACKED_DEFS(, 0, RX_ACT_NONE)
RX_PACKED_DEFS(_bias, 1, RX_ACT_NONE)
RX_PACKED_DEFS(_bias_relu, 1, RX_ACT_RELU)
RX_PACKED_DEFS(_bias_gelu, 1, RX_ACT_GELU)
RX_PACKED_DEFS(_bias_add, 2, RX_ACT_NONE)
#undef RX_PACKED_DEFS
#undef RX_PACKED_ARG_0
#undef RX_PACKED_ARG_1
#undef RX_PACKED_ARG_2
