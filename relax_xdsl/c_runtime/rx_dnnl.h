/* relax_xdsl's oneDNN library functions (relax_xdsl/dnnl.py registers
   them): conv2d of every kind (groups, depthwise, dilation, any strides and
   paddings) on oneDNN's C API. Defined in rx_dnnl.c, part of the runtime
   archive when oneDNN (the onednn-devel-cpu-gomp wheel) is installed.

   Library functions return nothing (the library calling convention of
   relax_xdsl/libraries.py), so a oneDNN failure (an unsupported shape, an
   allocation failure) cannot be reported: rx_dnnl_conv2d then computes the
   convolution with a direct loop nest instead (rx_dnnl_conv2d_direct),
   slower but equal to the reference. rx_dnnl_fallbacks counts those calls. */
#ifndef RX_DNNL_H
#define RX_DNNL_H
#include "rx_runtime.h"

/* Y (n x o x oh x ow) = conv2d(X (n x c x h x w), W (o x c/groups x kh x kw)),
   float32, X and Y NCHW (or NHWC, channels last, when `nhwc`), W OIHW,
   strides sh / sw, paddings pt / pl / pb / pr,
   dilations dh / dw (1: none), then + bias[oc] when `bias` is not NULL,
   then + R (a residual of Y's shape and layout, not Y's storage) when `R`
   is not NULL, as oneDNN's binary post-op, then the activation `act`
   (rx_conv_act: 0 none, 1 relu, 2 relu6). */
void rx_dnnl_conv2d(const float* X, const float* W, const float* bias, const float* R, float* Y, int64_t n, int64_t c,
                    int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh, int64_t ow, int64_t sh,
                    int64_t sw, int64_t pt, int64_t pl, int64_t pb, int64_t pr, int64_t dh, int64_t dw,
                    int64_t groups, int act, int nhwc);

/* rx_dnnl_conv2d for weights W that are a model constant: unchanged, at
   the same address, while the module lives. Their reordered copy is made
   on the first call and kept (per convolution and address) until
   rx_dnnl_forget_weights drops it. Its relu / relu6 runs as oneDNN's clip
   post-op when the result is proven NaN-free (finite X, W, bias and
   residual, and no sum can overflow; tried when X is no larger than Y):
   the clip would turn NaN into 0. */
void rx_dnnl_conv2d_cw(const float* X, const float* W, const float* bias, const float* R, float* Y, int64_t n,
                       int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                       int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t pb, int64_t pr, int64_t dh, int64_t dw,
                       int64_t groups, int act, int nhwc);

/* rx_dnnl_conv2d_cw (with an activation) whose X is the result of a
   constant-weight conv + relu6 call (the compiler knows it): when that
   call ran its relu6 as the post-op, on this thread, into X (same address
   and size), X is in [0, 6] and is not read again to prove this call's
   result NaN-free. The compiler's guarantee is what makes that record
   safe: X, live from that call to this one, cannot be written between. */
void rx_dnnl_conv2d_cw_after6(const float* X, const float* W, const float* bias, const float* R, float* Y, int64_t n,
                              int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh,
                              int64_t ow, int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t pb, int64_t pr,
                              int64_t dh, int64_t dw, int64_t groups, int act, int nhwc);

/* A dense layer on oneDNN's matmul: C (m x n) = A (m x k) @ W (k x n), all
   row-major, + bias (n; NULL for none), + R (m x n, a residual, not C's
   storage; NULL for none) as oneDNN's binary post-op, then the activation `act`
   (0 none, 1 relu, 3 gelu; relax's semantics, NaN kept) as a pass. W is a model
   constant, as for rx_dnnl_conv2d_cw: reordered once into the layout
   oneDNN picks and kept. Where that is a packed layout (its brgemm kernels,
   on AVX-512) this saves the packing a BLAS SGEMM does on
   every call; on plain AVX2 oneDNN's f32 matmul is its own SGEMM. */
void rx_dnnl_dense(const float* A, const float* W, const float* bias, const float* R, float* C, int64_t m,
                   int64_t k, int64_t n, int act);

/* C (batch x m x n) = A (batch x m x k) @ B (batch x k x n), all row-major;
   with `transposed_b`, B is stored batch x n x k and read transposed in
   place (q @ K^T). Both operands are computed at run time: nothing is kept. */
void rx_dnnl_matmul(const float* A, const float* B, float* C, int64_t batch, int64_t m, int64_t k, int64_t n,
                    int transposed_b);

/* Drops the kept copies of constant weights whose address is in [lo, hi):
   called when a module's constants are freed (their addresses may then
   hold another module's), while no call can still use them. */
RX_API void rx_dnnl_forget_weights(const void* lo, const void* hi);

/* The same convolution as direct loops (no oneDNN): the fallback. */
void rx_dnnl_conv2d_direct(const float* X, const float* W, const float* bias, float* Y, int64_t n, int64_t c,
                           int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                           int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t groups,
                           int act, int nhwc);

/* How many calls of rx_dnnl_conv2d, rx_dnnl_dense and rx_dnnl_matmul fell back to the direct loops. */
RX_API int64_t rx_dnnl_fallbacks(void);

/* How many calls of rx_dnnl_conv2d_cw and rx_dnnl_dense ran their activation as oneDNN's post-op. */
RX_API int64_t rx_dnnl_fused_activations(void);
#endif /* RX_DNNL_H */
