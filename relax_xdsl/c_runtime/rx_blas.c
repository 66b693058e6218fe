/* relax_xdsl's BLAS library functions (declared and described in rx_blas.h). */
#include "rx_blas.h"
#include <cblas.h>
#include <omp.h>
#include <pthread.h>

/* One thread pool: OpenBLAS runs single-threaded, and the products are
   split over OpenMP's threads here (rows, columns or batch entries, each
   block one single-threaded BLAS call). OpenBLAS's own pthread pool and
   OpenMP's would otherwise take turns on the same cores, each spinning or
   sleeping while the other works: on small products most of OpenBLAS's time
   went to its threads waiting for each other. oneDNN's convolutions use the
   same OpenMP pool. OpenBLAS's thread count is one global of this process's
   copy of the library, which only relax_xdsl uses. */
static pthread_once_t rx_blas_once = PTHREAD_ONCE_INIT;
static void rx_blas_single_thread(void) { scipy_openblas_set_num_threads(1); }
static inline void rx_blas_init(void) { pthread_once(&rx_blas_once, rx_blas_single_thread); }
typedef float rx_v16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t rx_vi16 __attribute__((vector_size(64), aligned(4)));
#ifdef __AVX512F__
#define RX_NV 2 /* 16 accumulators of 16 floats: 8 rows x 32 columns */
#else
#define RX_NV 1
#endif
/* Without AVX-512 the 16-float tiles spill (on an AVX2 EPYC, 8 rows x 256
   x 1024 ran far slower here than in SGEMM): few-row GEMMs and convs go to
   SGEMM there (RX_TEST_SMALL_GEMM keeps these kernels, for their tests). */
#if defined(__AVX512F__) || defined(RX_TEST_SMALL_GEMM)
#define RX_SMALL_GEMM_FAST 1
#else
#define RX_SMALL_GEMM_FAST 0
#endif
/* C[0:MR, 0:16*NV] (+)= A[0:MR, :] @ B[:, 0:16*NV] (+ rb[i] per row, then
   the activation (rx_conv_act) when asked): the tile's sums stay in registers over all of k; each
   B vector loaded once per k serves MR rows. B's row k starts at ROW: k * ldb
   (a matrix), or koff[k] (rows at given offsets: a conv's shifted windows,
   rx_conv_windows). Vector v of B's row and of C's rows is VS and CS floats
   after vector v - 1: 16 (side by side), or for the windows (_at) the
   arguments bs and cs (a conv's next output row: one tile covers two rows
   of a narrow image). */
#define RX_TILE_OF(MR, NV, SUFFIX, ROW, PREFETCH, VS, CS) \
static void rx_tile_##MR##_##NV##SUFFIX(int64_t K, int64_t lda, int64_t ldb, int64_t ldc, const float* restrict A, \
                                const float* restrict B, const int64_t* koff, int64_t bs, int64_t cs, \
                                float* restrict C, int acc_c, const float* rb, int act) { \
  rx_v16 acc[MR][NV]; \
  for (int i = 0; i < MR; ++i) \
    for (int v = 0; v < NV; ++v) { \
      acc[i][v] = acc_c ? *(const rx_v16*)(C + i * ldc + (CS) * v) : (rx_v16){0}; \
      if (rb) acc[i][v] += rb[i] - (rx_v16){0}; \
    } \
  for (int64_t k = 0; k < K; ++k) { \
    rx_v16 b[NV]; \
    for (int v = 0; v < NV; ++v) { \
      if (PREFETCH) __builtin_prefetch(B + (k + 16) * ldb + 16 * v); /* rows a page apart: ahead of the prefetchers */ \
      b[v] = *(const rx_v16*)(B + (ROW) + (VS) * v); \
    } \
    for (int i = 0; i < MR; ++i) { \
      rx_v16 a = A[i * lda + k] - (rx_v16){0}; /* a splat, no add */ \
      for (int v = 0; v < NV; ++v) acc[i][v] += a * b[v]; \
    } \
  } \
  for (int i = 0; i < MR; ++i) \
    for (int v = 0; v < NV; ++v) { \
      rx_v16 r = acc[i][v]; \
      if (act) r = (rx_v16)((rx_vi16)r & ~(rx_vi16)(r < (rx_v16){0})); /* v < 0 ? 0 : v (NaN stays) */ \
      if (act == 2) { /* then v > 6 ? 6 : v (NaN stays): relu6 */ \
        rx_vi16 above = (rx_vi16)(r > (rx_v16){0} + 6.0f); \
        r = (rx_v16)(((rx_vi16)r & ~above) | ((rx_vi16)((rx_v16){0} + 6.0f) & above)); \
      } \
      *(rx_v16*)(C + i * ldc + (CS) * v) = r; \
    } \
}
#define RX_TILE(MR, NV) RX_TILE_OF(MR, NV, , k * ldb, 1, 16, 16)
#define RX_TILE_AT(MR, NV) RX_TILE_OF(MR, NV, _at, koff[k], 0, bs, cs)
RX_TILE(8, 2) RX_TILE(4, 2) RX_TILE(2, 2) RX_TILE(1, 2)
RX_TILE(8, 1) RX_TILE(4, 1) RX_TILE(2, 1) RX_TILE(1, 1)
RX_TILE_AT(8, 2) RX_TILE_AT(4, 2) RX_TILE_AT(1, 2) /* (fewer variants: less to compile) */
RX_TILE_AT(8, 1) RX_TILE_AT(4, 1) RX_TILE_AT(1, 1)
/* The columns [j, j + 16 * nv) of all M rows, in tiles of 8, 4, 2, 1 rows. */
__attribute__((noinline))  /* one copy for the threaded and the plain loop */
static void rx_tile_column(int64_t M, int64_t K, int64_t j, int nv, const float* A, const float* B, float* C,
                           int64_t N, int acc_c, const float* rb, int act) {
  int64_t i = 0;
#define RX_ROWS(R) (nv == 2 ? rx_tile_##R##_2 : rx_tile_##R##_1)(K, K, N, N, A + i * K, B + j, NULL, 16, 16, \
                                                             C + i * N + j, acc_c, rb ? rb + i : NULL, act)
  for (; i + 8 <= M; i += 8) RX_ROWS(8);
  if (i + 4 <= M) { RX_ROWS(4); i += 4; }
  if (i + 2 <= M) { RX_ROWS(2); i += 2; }
  if (i < M) RX_ROWS(1);
#undef RX_ROWS
}
/* c[0:N] (+)= a @ B for one row a (1 x K) and B (K x N) of N <= 16 * NV
   columns: four sums over k (k mod 4) hide the multiply-add latency, each
   step one 16-float vector per NV of B's row k (reading on into the next
   row, whose lanes are unused); the last rows, whose vectors would read
   past B, one float at a time. For narrow B, SGEMV's kernels run a few
   floats per step. */
#define RX_GEMV(NV) \
static void rx_gemv_##NV(int64_t N, int64_t K, const float* a, const float* B, float* c, int acc_c) { \
  rx_v16 acc[4][NV]; \
  for (int u = 0; u < 4; ++u) for (int v = 0; v < NV; ++v) acc[u][v] = (rx_v16){0}; \
  int64_t safe = K - (16 * NV + N - 1) / N;  /* rows k < safe read inside B */ \
  if (safe < 0) safe = 0; \
  int64_t k = 0; \
  for (; k + 4 <= safe; k += 4) \
    for (int u = 0; u < 4; ++u) { \
      rx_v16 s = a[k + u] - (rx_v16){0}; \
      for (int v = 0; v < NV; ++v) acc[u][v] += s * *(const rx_v16*)(B + (k + u) * N + 16 * v); \
    } \
  float r[16 * NV]; \
  for (int v = 0; v < NV; ++v) *(rx_v16*)(r + 16 * v) = (acc[0][v] + acc[1][v]) + (acc[2][v] + acc[3][v]); \
  for (; k < K; ++k) \
    for (int64_t j = 0; j < N; ++j) r[j] += a[k] * B[k * N + j]; \
  for (int64_t j = 0; j < N; ++j) c[j] = acc_c ? c[j] + r[j] : r[j]; \
}
RX_GEMV(1) RX_GEMV(2)
/* One row times a matrix of up to 32 columns (a classifier's last layer):
   rx_gemv_NV; returns 0 (and does nothing) for wider ones. */
static int rx_sgemv_narrow(int64_t N, int64_t K, const float* a, const float* B, float* c, int acc_c) {
  if (N < 1 || N > 32) return 0;
  if (N <= 16) rx_gemv_1(N, K, a, B, c, acc_c);
  else rx_gemv_2(N, K, a, B, c, acc_c);
  return 1;
}
/* A stride-1 conv as a GEMM whose B rows are windows of a zero-padded copy
   of the image, no column matrix written: in rows wp (the padded width)
   long, im2col's row (ci, ky, kx) is channel ci's padded plane shifted by
   ky * wp + kx, so output row yy's columns [xx, xx + 16 * nv) are a
   register tile reading B at koff[k] + yy * wp + xx, written in place
   (the last ow % 16 columns through a 16-wide tile on the stack). Columns
   a 32-wide tile leaves are taken for two output rows at once, one vector
   of each (a 16-wide image then fills whole 32-wide tiles: measured faster
   on the CNN's second conv than one row at a time).
   rx_conv_windows_init zeroes the padded copy (its padding stays zero:
   each image writes only its own rows; 16 floats of slack after the last
   plane for the last tile's reads) and sets the rows' offsets. */
static void rx_conv_windows_init(float* padded, int64_t* koff, int64_t c, int64_t kh, int64_t kw, int64_t hp,
                                 int64_t wp) {
  memset(padded, 0, (size_t)(c * hp * wp + 16) * sizeof(float));
  for (int64_t ci = 0; ci < c; ++ci)
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx) koff[(ci * kh + ky) * kw + kx] = ci * hp * wp + ky * wp + kx;
}
/* y (o x oh x ow, o <= RX_SMALL_GEMM_ROWS) = W (o x k) conv x (c x h x w)
   (+ bias[oc], then the activation when asked), through `padded` as set up above. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))  /* short rows: inline copies */
static void rx_conv_windows(const float* x, const float* W, const float* bias, float* y, float* padded,
                            const int64_t* koff, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k,
                            int64_t oh, int64_t ow, int64_t hp, int64_t wp, int64_t pt, int64_t pl, int act) {
  int64_t rows = h < hp - pt ? h : hp - pt, width = w < wp - pl ? w : wp - pl, p = oh * ow;
  for (int64_t ci = 0; ci < c; ++ci)
    for (int64_t iy = 0; iy < rows; ++iy) {
      float* dst = padded + (ci * hp + iy + pt) * wp + pl;
      const float* src = x + (ci * h + iy) * w;
      for (int64_t xx = 0; xx < width; ++xx) dst[xx] = src[xx];
    }
  float tail[32 * RX_SMALL_GEMM_ROWS];
  /* NV vectors VS floats apart in B, CS apart in the output CP (rows LDC apart) */
#define RX_WINDOW_TILES(NV, VS, CP, CS, LDC) do { int64_t i = 0; \
    for (; i + 8 <= o; i += 8) \
      rx_tile_8_##NV##_at(k, k, 0, LDC, W + i * k, B + xx, koff, VS, CS, CP + i * LDC, 0, bias ? bias + i : NULL, act); \
    if (i + 4 <= o) { \
      rx_tile_4_##NV##_at(k, k, 0, LDC, W + i * k, B + xx, koff, VS, CS, CP + i * LDC, 0, bias ? bias + i : NULL, act); \
      i += 4; \
    } \
    for (; i < o; ++i) \
      rx_tile_1_##NV##_at(k, k, 0, LDC, W + i * k, B + xx, koff, VS, CS, CP + i * LDC, 0, bias ? bias + i : NULL, act); \
  } while (0)
  for (int64_t yy = 0; yy < oh;) {
    /* with 16-float vectors in pairs: the columns a 32-wide tile leaves of
       rows yy and yy + 1 in tiles of both rows (a narrow image's rows) */
    int64_t pair = RX_NV == 2 && yy + 1 < oh, x32 = RX_NV == 2 ? ow / 32 * 32 : 0;
    for (int64_t r = 0; r <= pair; ++r) {
      const float* B = padded + (yy + r) * wp;
      float* C = y + (yy + r) * ow;
      for (int64_t xx = 0; xx < x32; xx += 32) RX_WINDOW_TILES(2, 16, C + xx, 16, p);
    }
    const float* B = padded + yy * wp;
    float* C = y + yy * ow;
    int64_t xx = x32;
    if (pair) {
      for (; xx + 16 <= ow; xx += 16) RX_WINDOW_TILES(2, wp, C + xx, ow, p);
      if (xx < ow) {
        RX_WINDOW_TILES(2, wp, tail, 16, 32);
        for (int64_t oc = 0; oc < o; ++oc)
          for (int64_t r = 0; r < 2; ++r)
            for (int64_t j = xx; j < ow; ++j) C[oc * p + r * ow + j] = tail[oc * 32 + r * 16 + j - xx];
      }
    } else {
      for (; xx + 16 <= ow; xx += 16) RX_WINDOW_TILES(1, 16, C + xx, 16, p);
      if (xx < ow) {
        RX_WINDOW_TILES(1, 16, tail, 16, 16);
        for (int64_t oc = 0; oc < o; ++oc)
          for (int64_t j = xx; j < ow; ++j) C[oc * p + j] = tail[oc * 16 + j - xx];
      }
    }
    yy += 1 + pair;
  }
#undef RX_WINDOW_TILES
}
/* C (+)= A @ B (+ rb[i] on row i, then the activation when asked), row-major, A M x K,
   B K x N, C M x N; column tiles split over threads when the product is
   large. */
static void rx_sgemm_small(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C, int acc_c,
                           const float* rb, int act) {
  const int64_t width = 16 * RX_NV, tiles = N / width;
  if (2.0 * M * N * K >= RX_SMALL_GEMM_FLOPS && tiles > 1) {
    #pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) rx_tile_column(M, K, t * width, RX_NV, A, B, C, N, acc_c, rb, act);
  } else  /* no OpenMP region at all: even one kept on one thread costs more than a small product */
    for (int64_t t = 0; t < tiles; ++t) rx_tile_column(M, K, t * width, RX_NV, A, B, C, N, acc_c, rb, act);
  int64_t j = tiles * width;
  if (RX_NV == 2 && j + 16 <= N) { rx_tile_column(M, K, j, 1, A, B, C, N, acc_c, rb, act); j += 16; }
  if (j == N) return;
  /* the last t < 16 columns: a 16-column tile over zero-padded copies */
  int64_t t = N - j;
#ifndef RX_TEST_GEMM_TAIL_DIRECT
  float* b16 = (float*)malloc((size_t)(K > 0 ? K : 1) * 16 * sizeof(float));
  float* c16 = (float*)malloc((size_t)M * 16 * sizeof(float));
#else
  float *b16 = NULL, *c16 = NULL;  /* tests of the direct path */
#endif
  if (b16 && c16) {
    for (int64_t k = 0; k < K; ++k)
      for (int64_t jj = 0; jj < 16; ++jj) b16[k * 16 + jj] = jj < t ? B[k * N + j + jj] : 0.0f;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t jj = 0; jj < 16; ++jj) c16[i * 16 + jj] = acc_c && jj < t ? C[i * N + j + jj] : 0.0f;
    rx_tile_column(M, K, 0, 1, A, b16, c16, 16, 1, rb, act);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t jj = 0; jj < t; ++jj) C[i * N + j + jj] = c16[i * 16 + jj];
  } else {  /* no memory for the copies: column by column */
    for (int64_t i = 0; i < M; ++i)
      for (int64_t jj = j; jj < N; ++jj) {
        float s = (acc_c ? C[i * N + jj] : 0.0f) + (rb ? rb[i] : 0.0f);
        for (int64_t k = 0; k < K; ++k) s += A[i * K + k] * B[k * N + jj];
        C[i * N + jj] = rx_conv_act(s, act);
      }
  }
  free(b16);
  free(c16);
}

/* Whether a GEMM of m rows runs in rx_sgemm_small. */
static inline int rx_few_rows(int64_t m) { return RX_SMALL_GEMM_FAST && m >= 2 && m <= RX_SMALL_GEMM_ROWS; }

/* c[rows i0..i1, cols j0..j1] = a @ b + beta * c on one thread (row-major,
   leading dims k, n, n): SGEMV for one row, else SGEMM. With `tb`, b is
   stored transposed (n x k, leading dim k), as a key cache read for
   q @ K^T: BLAS takes the transpose as a flag and no copy is made. */
static void rx_gemm_block(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t n, int64_t k, float beta,
                          const float* a, const float* b, float* c, int tb) {
  int64_t rows = i1 - i0, cols = j1 - j0;
  if (rows <= 0 || cols <= 0) return;
  if (tb && rows == 1)  /* y = B[j0..j1] (cols x k) @ a-row: contiguous rows of B */
    scipy_cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)cols, (blasint)k, 1.0f, b + j0 * k, (blasint)k,
                      a + i0 * k, 1, beta, c + i0 * n + j0, 1);
  else if (tb)
    scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows, (blasint)cols, (blasint)k, 1.0f,
                      a + i0 * k, (blasint)k, b + j0 * k, (blasint)k, beta, c + i0 * n + j0, (blasint)n);
  else if (rows == 1)
    scipy_cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)k, (blasint)cols, 1.0f, b + j0, (blasint)n, a + i0 * k, 1,
                      beta, c + i0 * n + j0, 1);
  else
    scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)rows, (blasint)cols, (blasint)k, 1.0f,
                      a + i0 * k, (blasint)k, b + j0, (blasint)n, beta, c + i0 * n + j0, (blasint)n);
}

/* Thread t of `threads`'s block of an m x n product: rows when there are
   enough of them (16 or more per thread), else columns in multiples of 16. */
static inline void rx_gemm_split(int64_t m, int64_t n, int t, int threads, int64_t* i0, int64_t* i1, int64_t* j0,
                                 int64_t* j1) {
  if (m >= 16 * (int64_t)threads || n < 32 * (int64_t)threads) {
    *i0 = m * t / threads, *i1 = m * (t + 1) / threads, *j0 = 0, *j1 = n;
  } else {
    int64_t units = (n + 15) / 16;
    *i0 = 0, *i1 = m, *j0 = units * t / threads * 16, *j1 = units * (t + 1) / threads * 16;
    if (*j1 > n) *j1 = n;
    if (*j0 > n) *j0 = n;
  }
}

/* c = a @ b + beta * c (beta 0 or 1) for row-major a (m x k), b (k x n),
   c (m x n): one row through rx_sgemv_narrow (up to 32 columns), a few rows
   through rx_sgemm_small, else BLAS, split over OpenMP's threads when large
   (rx_blas_threads). An empty product (k = 0) is beta * c and an empty c
   (m or n = 0) is nothing to do: BLAS is not called then (it wants leading
   dims >= 1 and leaves y unwritten in an SGEMV of no rows). */
static void rx_gemm(int64_t m, int64_t n, int64_t k, float beta, const float* a, const float* b, float* c) {
  if (m == 0 || n == 0)
    return;
  rx_blas_init();
  if (k == 0) {
    if (beta == 0.0f) memset(c, 0, (size_t)m * (size_t)n * sizeof(float));
  } else if (rx_few_rows(m))
    rx_sgemm_small(m, n, k, a, b, c, beta != 0.0f, NULL, 0);
  else if (m == 1 && rx_sgemv_narrow(n, k, a, b, c, beta != 0.0f))
    ;
  else {
    int threads = rx_blas_threads(1, m, n, k);
    if (threads == 1) {
      rx_gemm_block(0, m, 0, n, n, k, beta, a, b, c, 0);
      return;
    }
    #pragma omp parallel num_threads(threads)
    {
      int64_t i0, i1, j0, j1;
      rx_gemm_split(m, n, omp_get_thread_num(), omp_get_num_threads(), &i0, &i1, &j0, &j1);
      rx_gemm_block(i0, i1, j0, j1, n, k, beta, a, b, c, 0);
    }
  }
}

/* batch products of (m x k) @ (k x n) (or @ (n x k)^T with `tb`), stored
   one after another: batch entries split over threads when there are at
   least as many as threads, else each product's rows or columns. */
static void rx_gemm_batch(int64_t batch, int64_t m, int64_t n, int64_t k, const float* A, const float* B, float* C,
                          int tb) {
  if (batch == 0 || m == 0 || n == 0) return;  /* nothing to write */
  if (k == 0) { memset(C, 0, (size_t)batch * (size_t)m * (size_t)n * sizeof(float)); return; }
  rx_blas_init();
  int threads = rx_blas_threads(batch, m, n, k);
  if (threads == 1) {
    for (int64_t i = 0; i < batch; ++i)
      rx_gemm_block(0, m, 0, n, n, k, 0.0f, A + i * m * k, B + i * k * n, C + i * m * n, tb);
    return;
  }
  #pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    if (batch >= nt) {
      for (int64_t i = batch * t / nt; i < batch * (t + 1) / nt; ++i)
        rx_gemm_block(0, m, 0, n, n, k, 0.0f, A + i * m * k, B + i * k * n, C + i * m * n, tb);
    } else {
      int64_t i0, i1, j0, j1;
      rx_gemm_split(m, n, t, nt, &i0, &i1, &j0, &j1);
      for (int64_t i = 0; i < batch; ++i)
        rx_gemm_block(i0, i1, j0, j1, n, k, 0.0f, A + i * m * k, B + i * k * n, C + i * m * n, tb);
    }
  }
}

void rx_blas_matmul_2x2(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t b0, int64_t b1, int64_t c0,
                        int64_t c1) {
  rx_gemm(a0, b1, b0, 0.0f, A, B, C);
}
void rx_blas_matmul_3x2(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t b0, int64_t b1,
                        int64_t c0, int64_t c1, int64_t c2) {
  rx_gemm(a0 * a1, b1, b0, 0.0f, A, B, C);
}
void rx_blas_matmul_4x2(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t a3, int64_t b0,
                        int64_t b1, int64_t c0, int64_t c1, int64_t c2, int64_t c3) {
  rx_gemm(a0 * a1 * a2, b1, b0, 0.0f, A, B, C);
}
void rx_blas_matmul_3x3(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t b0, int64_t b1,
                        int64_t b2, int64_t c0, int64_t c1, int64_t c2) {
  rx_gemm_batch(a0, a1, b2, a2, A, B, C, 0);
}
void rx_blas_matmul_4x4(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t a3, int64_t b0,
                        int64_t b1, int64_t b2, int64_t b3, int64_t c0, int64_t c1, int64_t c2, int64_t c3) {
  rx_gemm_batch(a0 * a1, a2, b3, a3, A, B, C, 0);
}

/* x1 @ swapaxes(x2, -1, -2): x2 holds the right operand transposed
   (blas.MATMUL_T_RANKS), read in place. */
void rx_blas_matmul_2x2_tb(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t b0, int64_t b1, int64_t c0,
                           int64_t c1) {
  rx_gemm_batch(1, a0, b0, a1, A, B, C, 1);
}
void rx_blas_matmul_3x3_tb(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t b0, int64_t b1,
                           int64_t b2, int64_t c0, int64_t c1, int64_t c2) {
  rx_gemm_batch(a0, a1, b1, a2, A, B, C, 1);
}
void rx_blas_matmul_4x4_tb(float* A, float* B, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t a3, int64_t b0,
                           int64_t b1, int64_t b2, int64_t b3, int64_t c0, int64_t c1, int64_t c2, int64_t c3) {
  rx_gemm_batch(a0 * a1, a2, b2, a3, A, B, C, 1);
}

/* One block of rx_dense: its part of C set to the bias, the product added
   (beta = 1), then the activation, while the block is in cache. */
static void rx_dense_block(int64_t i0, int64_t i1, int64_t j0, int64_t j1, const float* A, const float* B,
                           const float* D, float* C, int64_t k, int64_t n, int act) {
  if (i1 <= i0 || j1 <= j0) return;
  for (int64_t i = i0; i < i1; ++i) memcpy(C + i * n + j0, D + j0, (size_t)(j1 - j0) * sizeof(float));
  rx_gemm_block(i0, i1, j0, j1, n, k, 1.0f, A, B, C, 0);
  if (act != RX_ACT_NONE)
    for (int64_t i = i0; i < i1; ++i) rx_activate(C + i * n + j0, j1 - j0, act);
}

/* C = act(A @ B + D) with D a row of n: split over threads as rx_gemm is,
   each thread doing the bias, its product and the activation of its block;
   products rx_gemm keeps off BLAS (few rows, one narrow row, k = 0) go
   through it with the bias and activation around. */
static void rx_dense(const float* A, const float* B, const float* D, float* C, int64_t m, int64_t k, int64_t n,
                     int act) {
  if (m == 0 || n == 0) return;
  rx_blas_init();
  int threads = rx_blas_threads(1, m, n, k);
  if (k == 0 || rx_few_rows(m) || (m == 1 && n <= 32) || threads == 1) {
    for (int64_t i = 0; i < m; ++i) memcpy(C + i * n, D, (size_t)n * sizeof(float));
    rx_gemm(m, n, k, 1.0f, A, B, C);
    rx_activate(C, m * n, act);
    return;
  }
  #pragma omp parallel num_threads(threads)
  {
    int64_t i0, i1, j0, j1;
    rx_gemm_split(m, n, omp_get_thread_num(), omp_get_num_threads(), &i0, &i1, &j0, &j1);
    rx_dense_block(i0, i1, j0, j1, A, B, D, C, k, n, act);
  }
}

#define RX_DENSE_DEFS(ACT, CODE) \
  void rx_blas_dense_2x2##ACT(float* A, float* B, float* D, float* C, int64_t a0, int64_t a1, int64_t b0, int64_t b1, \
                              int64_t d0, int64_t c0, int64_t c1) { \
    rx_dense(A, B, D, C, a0, b0, b1, CODE); \
  } \
  void rx_blas_dense_3x2##ACT(float* A, float* B, float* D, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t b0, \
                              int64_t b1, int64_t d0, int64_t c0, int64_t c1, int64_t c2) { \
    rx_dense(A, B, D, C, a0 * a1, b0, b1, CODE); \
  } \
  void rx_blas_dense_4x2##ACT(float* A, float* B, float* D, float* C, int64_t a0, int64_t a1, int64_t a2, int64_t a3, \
                              int64_t b0, int64_t b1, int64_t d0, int64_t c0, int64_t c1, int64_t c2, int64_t c3) { \
    rx_dense(A, B, D, C, a0 * a1 * a2, b0, b1, CODE); \
  }
RX_DENSE_DEFS(, RX_ACT_NONE)
RX_DENSE_DEFS(_relu, RX_ACT_RELU)
RX_DENSE_DEFS(_gelu, RX_ACT_GELU)
#undef RX_DENSE_DEFS

/* Per image, at stride 1 with up to RX_SMALL_GEMM_ROWS output channels:
   register tiles reading shifted windows of a zero-padded copy of the
   image (rx_conv_windows: no column matrix; bias and activation applied in the
   tiles). Otherwise im2col (each row's in-input run copied, its padding
   zeroed, no test per element; at stride 1 with rows as wide as the
   input's, one shifted copy of the plane per tap), then one GEMM (with the
   bias as its C operand, or with bias and activation in the register tiles for a
   few channels), then the activation. A thread that cannot allocate its buffers
   convolves directly instead. */
/* One image's y (o x p) = W (o x k) @ cols (k x p) + the per-channel bias
   B: in register tiles with the bias and activation applied there for few output
   channels (returns 1: activation done), else the bias rows then BLAS (returns 0:
   activation still to apply). */
static int rx_conv_gemm(int64_t o, int64_t p, int64_t k, const float* W, const float* cols, const float* B,
                        float* y, int act) {
  if (rx_few_rows(o)) {
    rx_sgemm_small(o, p, k, W, cols, y, 0, B, act);
    return 1;
  }
  if (B)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t j = 0; j < p; ++j) y[oc * p + j] = B[oc];
  rx_gemm(o, p, k, B ? 1.0f : 0.0f, W, cols, y);
  return 0;
}

__attribute__((optimize("no-tree-loop-distribute-patterns")))  /* short rows: inline loops, not memset/memcpy */
__attribute__((noinline))  /* one copy for the threaded and the plain call */
static void rx_conv2d_images(int64_t b0, int64_t b1, const float* X, const float* W, const float* B, float* Y,
                             int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh,
                             int64_t ow, int64_t sh, int64_t sw, int64_t pt, int64_t pl, int act) {
  int64_t k = c * kh * kw, p = oh * ow;
  int unit = sh == 1 && sw == 1;
  /* shifted windows (see rx_conv_windows): stride 1, few output channels */
  int64_t hp = oh + kh - 1, wp = ow + kw - 1;
  int windows = unit && RX_SMALL_GEMM_FAST && o >= 1 && o <= RX_SMALL_GEMM_ROWS && p > 0;
#ifdef RX_TEST_CONV_IM2COL
  windows = 0;  /* tests of the column path */
#endif
  float *cols = NULL, *padded = NULL;
  int64_t* koff = NULL;
  /* a pointwise conv (1x1, stride 1, no padding): the image is its own
     column matrix (c x h*w), so the GEMM reads it in place */
  int pointwise = kh == 1 && kw == 1 && unit && pt == 0 && pl == 0 && oh == h && ow == w, in_place = 0;
#ifndef RX_TEST_CONV_DIRECT
  if (pointwise) {
    in_place = 1;
  } else if (windows) {
    padded = (float*)malloc((size_t)(c * hp * wp + 16) * sizeof(float));
    koff = (int64_t*)malloc((size_t)(k > 0 ? k : 1) * sizeof(int64_t));
    if (padded && koff) rx_conv_windows_init(padded, koff, c, kh, kw, hp, wp);
    else { free(padded); free(koff); padded = NULL; koff = NULL; }
  } else
    cols = (float*)malloc((size_t)(k * p > 0 ? k * p : 1) * sizeof(float));
#endif
  for (int64_t b = b0; b < b1; ++b) {
    const float* x = X + b * c * h * w;
    float* y = Y + b * o * p;
    if (padded) {
      rx_conv_windows(x, W, B, y, padded, koff, c, h, w, o, k, oh, ow, hp, wp, pt, pl, act);
      continue;
    }
    if (in_place) {
      if (rx_conv_gemm(o, p, k, W, x, B, y, act)) continue;
    } else if (!cols) {  /* no memory for the columns: a direct convolution, slower but right */
      for (int64_t oc = 0; oc < o; ++oc)
        for (int64_t yy = 0; yy < oh; ++yy)
          for (int64_t xx = 0; xx < ow; ++xx) {
            float acc = B ? B[oc] : 0.0f;
            for (int64_t ci = 0; ci < c; ++ci)
              for (int64_t ky = 0; ky < kh; ++ky)
                for (int64_t kx = 0; kx < kw; ++kx) {
                  int64_t iy = yy * sh - pt + ky, ix = xx * sw - pl + kx;
                  if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                    acc += x[(ci * h + iy) * w + ix] * W[((oc * c + ci) * kh + ky) * kw + kx];
                }
            y[(oc * oh + yy) * ow + xx] = acc;
          }
    } else {
      for (int64_t ci = 0; ci < c; ++ci)
        for (int64_t ky = 0; ky < kh; ++ky)
          for (int64_t kx = 0; kx < kw; ++kx) {
            float* row = cols + ((ci * kh + ky) * kw + kx) * p;
            /* output columns whose tap lies in the input: [lo, hi) */
            int64_t first = pl - kx, last = w - 1 + pl - kx;
            int64_t lo = first <= 0 ? 0 : (first + sw - 1) / sw;
            int64_t hi = last < 0 ? 0 : last / sw + 1;
            if (hi > ow) hi = ow;
            if (lo > hi) lo = hi;
            if (unit && ow == w) {
              /* stride 1 and rows as wide as the input's: the taps'
                 in-input rows are one shifted run of the image plane, copied
                 at once; the runs' wrapped-around ends and the rows outside
                 the input are then zeroed */
              int64_t ylo = pt - ky, yhi = h + pt - ky;
              if (ylo < 0) ylo = 0;
              if (ylo > oh) ylo = oh;
              if (yhi > oh) yhi = oh;
              if (yhi < ylo) yhi = ylo;
              int64_t shift = (ky - pt) * w + kx - pl, j0 = ylo * ow, j1 = yhi * ow;
              if (j0 + shift < 0) j0 = -shift;
              if (j1 + shift > h * w) j1 = h * w - shift;
              memset(row, 0, (size_t)(ylo * ow) * sizeof(float));
              if (j1 > j0) memcpy(row + j0, x + ci * h * w + j0 + shift, (size_t)(j1 - j0) * sizeof(float));
              memset(row + yhi * ow, 0, (size_t)(p - yhi * ow) * sizeof(float));
              for (int64_t yy = ylo; yy < yhi; ++yy) {
                for (int64_t xx = 0; xx < lo; ++xx) row[yy * ow + xx] = 0.0f;
                for (int64_t xx = hi; xx < ow; ++xx) row[yy * ow + xx] = 0.0f;
              }
              continue;
            }
            for (int64_t yy = 0; yy < oh; ++yy) {
              float* r = row + yy * ow;
              int64_t iy = yy * sh - pt + ky;
              if (iy < 0 || iy >= h) { for (int64_t xx = 0; xx < ow; ++xx) r[xx] = 0.0f; continue; }
              const float* src = x + (ci * h + iy) * w - pl + kx;
              for (int64_t xx = 0; xx < lo; ++xx) r[xx] = 0.0f;
              if (sw == 1)  /* contiguous: vectorized */
                for (int64_t xx = lo; xx < hi; ++xx) r[xx] = src[xx];
              else
                for (int64_t xx = lo; xx < hi; ++xx) r[xx] = src[xx * sw];
              for (int64_t xx = hi; xx < ow; ++xx) r[xx] = 0.0f;
            }
          }
      if (rx_conv_gemm(o, p, k, W, cols, B, y, act)) continue;
    }
    if (act == 2)
      for (int64_t j = 0; j < o * p; ++j) y[j] = rx_conv_act(y[j], 2);
    else if (act)
      for (int64_t j = 0; j < o * p; ++j) y[j] = rx_conv_act(y[j], 1);
  }
  free(cols);
  free(padded);
  free(koff);
}

/* Images split over threads when there are several and enough work, each
   image's GEMM single-threaded on its thread; one image's GEMM is split
   over the threads by rx_gemm. */
void rx_blas_conv2d(const float* X, const float* W, const float* bias, float* Y, int64_t n, int64_t c, int64_t h,
                    int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh, int64_t ow, int64_t sh, int64_t sw,
                    int64_t pt, int64_t pl, int act) {
  rx_blas_init();
  if (!(n > 1 && n * o * oh * ow * c * kh * kw >= 262144) || omp_in_parallel()) {
    rx_conv2d_images(0, n, X, W, bias, Y, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pl, act);
    return;
  }
  #pragma omp parallel
  {
    int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
    rx_conv2d_images(n * t / threads, n * (t + 1) / threads, X, W, bias, Y, c, h, w, o, kh, kw, oh, ow, sh, sw, pt,
                     pl, act);
  }
}

/* ---- attention (relax.attention, relax_xdsl/ops/attention.py) ----
   Each task is one block of query rows of one (b0, b1) entry: their scores
   (rows x t) go to a buffer of the thread's, are scaled, biased and
   softmaxed in place, and multiply V into the output rows. The full score
   matrix is never written, so it never leaves the cache. */

/* Query rows per task: a score block of at most 64K floats (256 KB), 8 to 128 rows. */
static inline int64_t rx_attention_rows(int64_t t) {
  int64_t rows = t > 0 ? 65536 / t : 64;
  return rows > 128 ? 128 : rows < 8 ? 8 : rows;
}

/* One row's softmax(s * scale + bias) in place, as relax.softmax computes
   it (NaN in the row gives NaN throughout; zero_nan then makes them 0). */
static void rx_attention_softmax(float* s, const float* bias, int64_t bias_step, int64_t t, float scale, int zero_nan) {
  float top = -INFINITY;
  int nan = 0;
  #pragma omp simd reduction(max : top) reduction(| : nan)
  for (int64_t j = 0; j < t; ++j) {
    float x = s[j] * scale + bias[j * bias_step];
    s[j] = x;
    top = x > top ? x : top;
    nan |= x != x;
  }
  if (nan) { /* NaN in the row: NaN throughout, as the written-out softmax gives */
    for (int64_t j = 0; j < t; ++j) s[j] = zero_nan ? 0.0f : NAN;
    return;
  }
  float sum = 0.0f;
  #pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < t; ++j) {
    float x = s[j] - top; /* below -87 exp is subnormal (a masked score): 0, as subnormal
                             operands slow the product with V down many times over */
    float e = x < -87.0f ? 0.0f : rx_expf(x);
    s[j] = e;
    sum += e;
  }
  float inv = 1.0f / sum;
  #pragma omp simd
  for (int64_t j = 0; j < t; ++j) {
    float p = s[j] * inv;
    s[j] = zero_nan && p != p ? 0.0f : p;
  }
}

/* Multiply-adds of a task below which its two products are loops here:
   two SGEMM calls cost more than that work (a short sequence, many heads). */
#define RX_ATTENTION_DIRECT_MACS 65536
#define RX_ATTENTION_SPLIT_MACS 131072.0

typedef float rx_v8 __attribute__((vector_size(32), aligned(4)));
static inline rx_v8 rx_load8(const float* p) { return *(const rx_v8*)p; } /* unaligned, as rx_v16 */
static inline float rx_sum8(rx_v8 v) {
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

/* scores (rows x t) = q (rows x d) @ K^T, K stored t x d: dot products, four keys at a time (four
   independent sums in registers, 8 floats wide), the last d mod 8 terms scalar. */
static void rx_attention_scores_direct(const float* q, const float* k, float* scores, int64_t rows, int64_t t,
                                       int64_t d) {
  int64_t d8 = d / 8 * 8;
  for (int64_t i = 0; i < rows; ++i) {
    const float* qi = q + i * d;
    int64_t j = 0;
    for (; j + 4 <= t; j += 4) {
      const float *k0 = k + j * d, *k1 = k0 + d, *k2 = k1 + d, *k3 = k2 + d;
      rx_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
      for (int64_t r = 0; r < d8; r += 8) {
        rx_v8 x = rx_load8(qi + r);
        a0 += x * rx_load8(k0 + r);
        a1 += x * rx_load8(k1 + r);
        a2 += x * rx_load8(k2 + r);
        a3 += x * rx_load8(k3 + r);
      }
      float s0 = rx_sum8(a0), s1 = rx_sum8(a1), s2 = rx_sum8(a2), s3 = rx_sum8(a3);
      for (int64_t r = d8; r < d; ++r) {
        s0 += qi[r] * k0[r], s1 += qi[r] * k1[r], s2 += qi[r] * k2[r], s3 += qi[r] * k3[r];
      }
      scores[i * t + j] = s0, scores[i * t + j + 1] = s1, scores[i * t + j + 2] = s2, scores[i * t + j + 3] = s3;
    }
    for (; j < t; ++j) {
      float acc = 0.0f;
      for (int64_t r = 0; r < d; ++r) acc += qi[r] * k[j * d + r];
      scores[i * t + j] = acc;
    }
  }
}

/* o (rows x dv) = p (rows x t) @ V (t x dv): 32 output columns at a time summed in registers over the
   keys, the last dv mod 32 columns by a plain loop. */
static void rx_attention_values_direct(const float* p, const float* v, float* o, int64_t rows, int64_t t,
                                       int64_t dv) {
  int64_t d32 = dv / 32 * 32;
  for (int64_t i = 0; i < rows; ++i) {
    const float* pi = p + i * t;
    float* oi = o + i * dv;
    for (int64_t c = 0; c < d32; c += 32) {
      rx_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
      for (int64_t j = 0; j < t; ++j) {
        const float* vj = v + j * dv + c;
        float pj = pi[j];
        a0 += pj * rx_load8(vj);
        a1 += pj * rx_load8(vj + 8);
        a2 += pj * rx_load8(vj + 16);
        a3 += pj * rx_load8(vj + 24);
      }
      *(rx_v8*)(oi + c) = a0;
      *(rx_v8*)(oi + c + 8) = a1;
      *(rx_v8*)(oi + c + 16) = a2;
      *(rx_v8*)(oi + c + 24) = a3;
    }
    for (int64_t c = d32; c < dv; ++c) {
      float acc = 0.0f;
      for (int64_t j = 0; j < t; ++j) acc += pi[j] * v[j * dv + c];
      oi[c] = acc;
    }
  }
}

/* The rows of one task without a score buffer (when none can be had): the
   same softmax, each score recomputed per pass. Slower, same result. */
static void rx_attention_unbuffered(const float* q, const float* k, const float* v, const float* bias,
                                    const int64_t* bst, float* o, int64_t rows, int64_t t, int64_t d, int64_t dv,
                                    float scale, int zero_nan) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* qi = q + i * d;
    const float* bi = bias + i * bst[2];
    float top = -INFINITY, sum = 0.0f;
    for (int64_t pass = 0; pass < 3; ++pass)
      for (int64_t j = 0; j < t; ++j) {
        float x = 0.0f;
        for (int64_t r = 0; r < d; ++r) x += qi[r] * k[j * d + r];
        x = x * scale + bi[j * bst[3]];
        if (pass == 0) {
          top = (x > top || x != x) && top == top ? x : top;
        } else if (pass == 1) {
          sum += rx_expf(x - top);
        } else {
          float p = rx_expf(x - top) / sum;
          if (zero_nan && p != p) p = 0.0f;
          for (int64_t c = 0; c < dv; ++c) o[i * dv + c] = (j ? o[i * dv + c] : 0.0f) + p * v[j * dv + c];
        }
      }
    if (t == 0)
      for (int64_t c = 0; c < dv; ++c) o[i * dv + c] = 0.0f;
  }
}

void rx_blas_attention(const float* Q, const float* K, const float* V, const float* bias, const int64_t* bst,
                       float* O, int64_t b0, int64_t b1, int64_t s, int64_t t, int64_t d, int64_t dv, float scale,
                       int zero_nan) {
  if (b0 == 0 || b1 == 0 || s == 0 || dv == 0) return; /* an empty output */
  if (t == 0) { /* no keys: every output row is an empty sum */
    memset(O, 0, (size_t)(b0 * b1 * s * dv) * sizeof(float));
    return;
  }
  rx_blas_init();
  int64_t rb = rx_attention_rows(t), blocks = (s + rb - 1) / rb, tasks = b0 * b1 * blocks;
  /* split from RX_ATTENTION_SPLIT_MACS: each task's work (two products, a softmax's exps) is independent,
     so a team pays off well below a GEMM's split point */
  double macs = (double)(b0 * b1) * s * t * (d + dv);
  int threads = omp_in_parallel() || macs < RX_ATTENTION_SPLIT_MACS ? 1 : omp_get_max_threads();
  if (threads > tasks) threads = (int)tasks;
  #pragma omp parallel num_threads(threads)
  {
    float* scores = (float*)malloc((size_t)(rb * t) * sizeof(float));
    #pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      int64_t e = task / blocks, i0 = task % blocks * rb, rows = s - i0 < rb ? s - i0 : rb;
      int64_t e0 = e / b1, e1 = e % b1;
      const float* q = Q + (e * s + i0) * d;
      const float* k = K + e * t * d;
      const float* v = V + e * t * dv;
      const float* bi = bias + e0 * bst[0] + e1 * bst[1] + i0 * bst[2];
      float* o = O + (e * s + i0) * dv;
      if (!scores || d == 0) {
        rx_attention_unbuffered(q, k, v, bi, bst, o, rows, t, d, dv, scale, zero_nan);
        continue;
      }
      int small = rows * t * (d + dv) < RX_ATTENTION_DIRECT_MACS;
      if (small) rx_attention_scores_direct(q, k, scores, rows, t, d);
      else rx_gemm_block(0, rows, 0, t, t, d, 0.0f, q, k, scores, 1); /* q @ K^T */
      for (int64_t i = 0; i < rows; ++i)
        rx_attention_softmax(scores + i * t, bi + i * bst[2], bst[3], t, scale, zero_nan);
      if (small) rx_attention_values_direct(scores, v, o, rows, t, dv);
      else rx_gemm_block(0, rows, 0, dv, dv, t, 0.0f, scores, v, o, 0); /* p @ V */
    }
    free(scores);
  }
}
