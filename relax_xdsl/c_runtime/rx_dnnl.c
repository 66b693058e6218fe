/* conv2d and dense layers on oneDNN's C API (see rx_dnnl.h).

   Source and destination are NCHW or NHWC (`nhwc`), weights OIHW.
   NHWC (channels last; what the convert-layout pass gives every conv it
   sends here) is taken as it is: oneDNN's channels-last kernels (brgemm,
   depthwise) run on it in place, as fast as on its own blocked layouts.
   For NCHW the primitive is created with `any` layouts for source, weights
   and destination, so oneDNN picks its fastest (blocked) kernel; the
   buffers are reordered into those layouts and the result back, each call
   (oneDNN's NCHW kernels are several times slower than that). A pointwise
   conv (1x1, stride 1, unpadded; ShuffleNet's grouped ones) keeps NCHW
   source and destination: oneDNN's GEMM runs on them in place, and the
   two reorders it saves cost as much as the convolution.

   Weights: rx_dnnl_conv2d reorders them on every call (a weight buffer may
   be a parameter whose contents change between calls at the same address).
   rx_dnnl_conv2d_cw is called only for model constants (the compiler knows
   them; the C emitter refuses any other operand), whose contents never
   change while their module lives: their reordered copy is kept in the
   convolution's cache entry, keyed on the weights' address, made once
   (under the cache's lock, so two threads never make it twice) and
   dropped by rx_dnnl_forget_weights when the module releases its
   constants (an address may then hold another module's weights).

   Creating a primitive costs far more than running a small one, so the
   primitives (convolution and reorders) are cached, keyed on every dim and
   parameter, behind a mutex; execution runs outside the lock on a stream
   of its own with a scratchpad of its own (user scratchpad mode), so calls
   from several threads may run at once. (Both are made per call: making a
   stream is cheap and malloc recycles the buffers, so keeping them per
   thread was not faster.)

   A dense layer (rx_dnnl_dense) is the same machinery around a matmul
   primitive: its cache entry is keyed on (m, k, n, activation, bias), its
   row-major source and destination are used as they are, and its constant
   weights are reordered once into the layout the primitive picks (packed for oneDNN's brgemm
   kernels; as they are on plain AVX2, where its f32 matmul is its SGEMM) and kept. A
   batched matmul of two computed operands (rx_dnnl_matmul: attention's
   q @ K^T and p @ V) runs on every operand in place.

   A conv's relu / relu6, and a dense layer's relu / gelu, are oneDNN
   post-ops (clip, gelu_erf) only when the call's result is proven NaN-free
   (rx_dnnl_nan_free): oneDNN's clip turns NaN into 0, where relax.relu and
   relax.clip keep it, and its gelu_erf is not specified for NaN. Otherwise
   the activation is a separate pass after an unfused primitive (a cache
   entry of its own). The post-op saves that pass: a second trip through a
   result that has left the cache (a transformer's widest GEMM).

   A conv may add a residual R (ResNet's shortcut) before its activation:
   oneDNN's binary add post-op reads R as the caller lays out Y (the
   offload pass sends only channels-last convs, where that is the
   destination's own layout). The NaN-free proof then reads R as well.
   Should oneDNN refuse it, the conv runs without it and one pass of ours
   adds R and applies the activation. */
#include "rx_dnnl.h"

#include <float.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>

#define RX_DNNL_KEY 22 /* the last entry: RX_DNNL_CONV, RX_DNNL_DENSE or RX_DNNL_MATMUL */
#define RX_DNNL_CONV 0
#define RX_DNNL_DENSE 1
#define RX_DNNL_MATMUL 2
#define RX_DNNL_CACHE_MAX 512
#define RX_DNNL_POST_OP 8 /* or-ed into a key's activation: the activation as oneDNN's post-op */
#define RX_DNNL_GELU 3    /* a dense layer's activation codes: rx_conv_act's (0 none, 1 relu), and this */
/* A key's RX_DNNL_OPERANDS entry (19): which optional operands the call has */
#define RX_DNNL_HAS_BIAS 1
#define RX_DNNL_HAS_RESIDUAL 2 /* + R (the destination's shape and layout) as a binary post-op, before the act */
#define RX_DNNL_RESIDUAL(key) ((key)[19] & RX_DNNL_HAS_RESIDUAL)

/* A constant weight buffer in the convolution's layout. */
typedef struct rx_dnnl_weights {
  const float* W; /* the constant, as the calling convention lays it out */
  void* data;     /* W reordered to the entry's conv_md[1] */
  struct rx_dnnl_weights* next;
} rx_dnnl_weights;

typedef struct rx_dnnl_conv {
  int64_t key[RX_DNNL_KEY];
  dnnl_primitive_t conv;
  dnnl_primitive_t reorder[3]; /* user -> conv for src and weights, conv -> user for dst; NULL when equal */
  dnnl_memory_desc_t user_md[4]; /* src, weights, bias, dst as the calling convention lays them out */
  dnnl_memory_desc_t conv_md[3]; /* src, weights, dst as the convolution takes them */
  size_t scratch_bytes;
  rx_dnnl_weights* weights; /* reordered constant weights (rx_dnnl_conv2d_cw), under rx_dnnl_lock */
  struct rx_dnnl_conv* next;
} rx_dnnl_conv;

static pthread_mutex_t rx_dnnl_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t rx_dnnl_engine;
static rx_dnnl_conv* rx_dnnl_cache;
static int64_t rx_dnnl_cached;
static int64_t rx_dnnl_fallback_count;
static int64_t rx_dnnl_fused_count;
static void rx_dnnl_forget_bounds(const void* lo, const void* hi);

int64_t rx_dnnl_fallbacks(void) {
  return __atomic_load_n(&rx_dnnl_fallback_count, __ATOMIC_RELAXED);
}

int64_t rx_dnnl_fused_activations(void) {
  return __atomic_load_n(&rx_dnnl_fused_count, __ATOMIC_RELAXED);
}

void rx_dnnl_conv2d_direct(const float* X, const float* W, const float* bias, float* Y, int64_t n, int64_t c,
                           int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                           int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t groups,
                           int act, int nhwc) {
  int64_t cg = c / groups, og = o / groups;
  /* element strides of a channel, a row and a column of X and of Y */
  int64_t xc = nhwc ? 1 : h * w, xy = nhwc ? w * c : w, xx = nhwc ? c : 1;
  int64_t yc = nhwc ? 1 : oh * ow, yy = nhwc ? ow * o : ow, yx = nhwc ? o : 1;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oc = 0; oc < o; ++oc) {
      int64_t g = oc / og;
      const float* wk = W + oc * cg * kh * kw;
      float* out = Y + b * o * oh * ow + oc * yc;
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x) {
          float acc = bias ? bias[oc] : 0.0f;
          for (int64_t ic = 0; ic < cg; ++ic) {
            const float* in = X + b * c * h * w + (g * cg + ic) * xc;
            for (int64_t i = 0; i < kh; ++i) {
              int64_t iy = y * sh - pt + i * dh;
              if (iy < 0 || iy >= h) continue;
              for (int64_t j = 0; j < kw; ++j) {
                int64_t ix = x * sw - pl + j * dw;
                if (ix < 0 || ix >= w) continue;
                acc += in[iy * xy + ix * xx] * wk[(ic * kh + i) * kw + j];
              }
            }
          }
          out[y * yy + x * yx] = rx_conv_act(acc, act);
        }
    }
}

static void rx_dnnl_free_entry(rx_dnnl_conv* e) {
  while (e->weights) {
    rx_dnnl_weights* next = e->weights->next;
    free(e->weights->data);
    free(e->weights);
    e->weights = next;
  }
  if (e->conv) dnnl_primitive_destroy(e->conv);
  for (int i = 0; i < 3; ++i) {
    if (e->reorder[i]) dnnl_primitive_destroy(e->reorder[i]);
    if (e->conv_md[i]) dnnl_memory_desc_destroy(e->conv_md[i]);
  }
  for (int i = 0; i < 4; ++i)
    if (e->user_md[i]) dnnl_memory_desc_destroy(e->user_md[i]);
  free(e);
}

/* A reorder primitive from `from` to `to`, or NULL (with *ok kept) when they are equal. */
static dnnl_primitive_t rx_dnnl_reorder(const_dnnl_memory_desc_t from, const_dnnl_memory_desc_t to, int* ok) {
  if (dnnl_memory_desc_equal(from, to)) return NULL;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t prim = NULL;
  if (dnnl_reorder_primitive_desc_create(&pd, from, rx_dnnl_engine, to, rx_dnnl_engine, NULL) != dnnl_success ||
      dnnl_primitive_create(&prim, pd) != dnnl_success) {
    *ok = 0;
    prim = NULL;
  }
  if (pd) dnnl_primitive_desc_destroy(pd);
  return prim;
}

/* Makes `e`'s primitive from `pd`: the layouts it takes, its scratchpad size, and the reorders between the
   calling convention's layouts (e->user_md) and those; 1 on success. */
static int rx_dnnl_adopt(rx_dnnl_conv* e, const_dnnl_primitive_desc_t pd) {
  const_dnnl_memory_desc_t md[3] = {dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
                                    dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
                                    dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0)};
  const_dnnl_memory_desc_t scratch = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  int ok = 1;
  for (int i = 0; i < 3; ++i) ok = ok && md[i] && dnnl_memory_desc_clone(&e->conv_md[i], md[i]) == dnnl_success;
  e->scratch_bytes = scratch ? dnnl_memory_desc_get_size(scratch) : 0;
  ok = ok && dnnl_primitive_create(&e->conv, pd) == dnnl_success;
  if (ok) {
    e->reorder[0] = rx_dnnl_reorder(e->user_md[0], e->conv_md[0], &ok);
    e->reorder[1] = rx_dnnl_reorder(e->user_md[1], e->conv_md[1], &ok);
    e->reorder[2] = rx_dnnl_reorder(e->conv_md[2], e->user_md[3], &ok);
  }
  return ok;
}

/* Gives `attr` its post-ops: + a residual tensor laid out as `residual` (a binary add, post-op 0; none
   when NULL), then one eltwise post-op (`alg` with its alpha and beta; none when `eltwise` is 0): a
   conv's or dense layer's residual add and activation, in the order of the graph ops; 1 on success. */
static int rx_dnnl_post_ops(dnnl_primitive_attr_t attr, const_dnnl_memory_desc_t residual, int eltwise,
                            dnnl_alg_kind_t alg, float alpha, float beta) {
  if (!residual && !eltwise) return 1;
  dnnl_post_ops_t post = NULL;
  int ok = dnnl_post_ops_create(&post) == dnnl_success;
  if (ok && residual) ok = dnnl_post_ops_append_binary(post, dnnl_binary_add, residual) == dnnl_success;
  if (ok && eltwise) ok = dnnl_post_ops_append_eltwise(post, alg, alpha, beta) == dnnl_success;
  ok = ok && dnnl_primitive_attr_set_post_ops(attr, post) == dnnl_success;
  if (post) dnnl_post_ops_destroy(post);
  return ok;
}

/* Makes `e`'s primitive a matmul of its user source and destination by `weights` (+ `bias`, or NULL),
   with a user scratchpad; 1 on success. */
static int rx_dnnl_adopt_matmul(rx_dnnl_conv* e, const_dnnl_memory_desc_t weights, const_dnnl_memory_desc_t bias) {
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL;
  int ok = dnnl_primitive_attr_create(&attr) == dnnl_success &&
           dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
  if (ok && e->key[21] == RX_DNNL_DENSE) {
    /* relu as clip to [0, FLT_MAX] (the conv's), gelu as gelu_erf: after the bias and the residual */
    int gelu = (e->key[18] & ~RX_DNNL_POST_OP) == RX_DNNL_GELU;
    ok = rx_dnnl_post_ops(attr, RX_DNNL_RESIDUAL(e->key) ? e->user_md[3] : NULL, e->key[18] & RX_DNNL_POST_OP,
                          gelu ? dnnl_eltwise_gelu_erf : dnnl_eltwise_clip_v2, 0.0f, gelu ? 0.0f : FLT_MAX);
  }
  ok = ok && dnnl_matmul_primitive_desc_create(&pd, rx_dnnl_engine, e->user_md[0], weights, bias, e->user_md[3],
                                               attr) == dnnl_success &&
       rx_dnnl_adopt(e, pd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (attr) dnnl_primitive_attr_destroy(attr);
  return ok;
}

/* A dense layer's matmul in `e` (key: m k n, then zeros, act [| RX_DNNL_POST_OP], RX_DNNL_OPERANDS, 0,
   RX_DNNL_DENSE): source and destination row-major as they are, the weights (k x n, row-major) reordered
   into the layout oneDNN picks (`any`), the bias a row; 1 on success. Called with rx_dnnl_lock held. */
static int rx_dnnl_create_dense(rx_dnnl_conv* e) {
  const int64_t* k = e->key;
  int has_bias = (int)(k[19] & RX_DNNL_HAS_BIAS);
  dnnl_dims_t src = {k[0], k[1]}, wei = {k[1], k[2]}, bias = {1, k[2]}, dst = {k[0], k[2]};
  int ok = dnnl_memory_desc_create_with_tag(&e->user_md[0], 2, src, dnnl_f32, dnnl_ab) == dnnl_success &&
           dnnl_memory_desc_create_with_tag(&e->user_md[1], 2, wei, dnnl_f32, dnnl_ab) == dnnl_success &&
           dnnl_memory_desc_create_with_tag(&e->user_md[2], 2, bias, dnnl_f32, dnnl_ab) == dnnl_success &&
           dnnl_memory_desc_create_with_tag(&e->user_md[3], 2, dst, dnnl_f32, dnnl_ab) == dnnl_success;
  dnnl_memory_desc_t any = NULL;
  ok = ok && dnnl_memory_desc_create_with_tag(&any, 2, wei, dnnl_f32, dnnl_format_tag_any) == dnnl_success;
  ok = ok && rx_dnnl_adopt_matmul(e, any, has_bias ? e->user_md[2] : NULL);
  if (any) dnnl_memory_desc_destroy(any);
  return ok;
}

/* A batched matmul in `e` (key: batch m k n transposed_b, then zeros, RX_DNNL_MATMUL): every operand as
   the calling convention lays it out (row-major; B stored n x k when transposed_b), nothing reordered or
   kept (B is computed at run time: attention's keys and values). 1 on success. Called with rx_dnnl_lock held. */
static int rx_dnnl_create_matmul(rx_dnnl_conv* e) {
  const int64_t* k = e->key;
  dnnl_dims_t src = {k[0], k[1], k[2]}, wei = {k[0], k[2], k[3]}, dst = {k[0], k[1], k[3]};
  int ok = dnnl_memory_desc_create_with_tag(&e->user_md[0], 3, src, dnnl_f32, dnnl_abc) == dnnl_success &&
           dnnl_memory_desc_create_with_tag(&e->user_md[1], 3, wei, dnnl_f32, k[4] ? dnnl_acb : dnnl_abc) ==
               dnnl_success &&
           dnnl_memory_desc_create_with_tag(&e->user_md[3], 3, dst, dnnl_f32, dnnl_abc) == dnnl_success;
  return ok && rx_dnnl_adopt_matmul(e, e->user_md[1], NULL);
}

/* The convolution for `key` (n c h w o kh kw oh ow sh sw pt pl pb pr dh dw groups act RX_DNNL_OPERANDS nhwc
   RX_DNNL_CONV), created with its reorders; NULL when oneDNN refuses it. Called with rx_dnnl_lock held. */
static rx_dnnl_conv* rx_dnnl_create(const int64_t* k) {
  int64_t n = k[0], c = k[1], h = k[2], w = k[3], o = k[4], kh = k[5], kw = k[6], oh = k[7], ow = k[8];
  int64_t groups = k[17];
  int has_bias = (int)(k[19] & RX_DNNL_HAS_BIAS), nhwc = (int)k[20];
  if (!rx_dnnl_engine && dnnl_engine_create(&rx_dnnl_engine, dnnl_cpu, 0) != dnnl_success) {
    rx_dnnl_engine = NULL;
    return NULL;
  }
  rx_dnnl_conv* e = calloc(1, sizeof *e);
  if (!e) return NULL;
  memcpy(e->key, k, sizeof e->key);
  if (k[21] == RX_DNNL_DENSE || k[21] == RX_DNNL_MATMUL) {
    if (k[21] == RX_DNNL_DENSE ? rx_dnnl_create_dense(e) : rx_dnnl_create_matmul(e)) return e;
    rx_dnnl_free_entry(e);
    return NULL;
  }
  int ok = 1;
  dnnl_dims_t src = {n, c, h, w}, dst = {n, o, oh, ow}, bias = {o};
  dnnl_dims_t wei = {o, c, kh, kw}, gwei = {groups, o / groups, c / groups, kh, kw};
  dnnl_format_tag_t user = nhwc ? dnnl_nhwc : dnnl_nchw;
  ok &= dnnl_memory_desc_create_with_tag(&e->user_md[0], 4, src, dnnl_f32, user) == dnnl_success;
  ok &= (groups == 1 ? dnnl_memory_desc_create_with_tag(&e->user_md[1], 4, wei, dnnl_f32, dnnl_oihw)
                     : dnnl_memory_desc_create_with_tag(&e->user_md[1], 5, gwei, dnnl_f32, dnnl_goihw)) == dnnl_success;
  ok &= dnnl_memory_desc_create_with_tag(&e->user_md[2], 1, bias, dnnl_f32, dnnl_a) == dnnl_success;
  ok &= dnnl_memory_desc_create_with_tag(&e->user_md[3], 4, dst, dnnl_f32, user) == dnnl_success;
  dnnl_memory_desc_t any[3] = {NULL, NULL, NULL};
  /* a pointwise conv (1x1, stride 1, no padding) on the calling convention's
     NCHW: oneDNN runs it as GEMMs on the image in place, where a blocked
     layout would cost a reorder of the input and of the output each call,
     as much as the convolution itself */
  int pointwise = kh == 1 && kw == 1 && k[9] == 1 && k[10] == 1 && k[11] == 0 && k[12] == 0 && k[13] == 0 &&
                  k[14] == 0 && k[15] == 1 && k[16] == 1;
  dnnl_format_tag_t act = nhwc ? dnnl_nhwc : pointwise ? dnnl_nchw : dnnl_format_tag_any;
  ok = ok && dnnl_memory_desc_create_with_tag(&any[0], 4, src, dnnl_f32, act) == dnnl_success;
  ok = ok && (groups == 1 ? dnnl_memory_desc_create_with_tag(&any[1], 4, wei, dnnl_f32, dnnl_format_tag_any)
                          : dnnl_memory_desc_create_with_tag(&any[1], 5, gwei, dnnl_f32, dnnl_format_tag_any))
                 == dnnl_success;
  ok = ok && dnnl_memory_desc_create_with_tag(&any[2], 4, dst, dnnl_f32, act) == dnnl_success;
  dnnl_primitive_attr_t attr = NULL;
  ok = ok && dnnl_primitive_attr_create(&attr) == dnnl_success &&
       dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
  /* the residual (as the destination is laid out for the caller), then relu = clip to [0, FLT_MAX] or
     relu6 = clip to [0, 6] */
  float hi = (k[18] & ~RX_DNNL_POST_OP) == 2 ? 6.0f : FLT_MAX;
  ok = ok && rx_dnnl_post_ops(attr, RX_DNNL_RESIDUAL(k) ? e->user_md[3] : NULL, k[18] & RX_DNNL_POST_OP,
                              dnnl_eltwise_clip_v2, 0.0f, hi);
  dnnl_primitive_desc_t pd = NULL;
  dnnl_dims_t strides = {k[9], k[10]}, pad_l = {k[11], k[12]}, pad_r = {k[13], k[14]};
  dnnl_dims_t dilates = {k[15] - 1, k[16] - 1};
  ok = ok && dnnl_convolution_forward_primitive_desc_create(
                 &pd, rx_dnnl_engine, dnnl_forward_inference, dnnl_convolution_direct, any[0], any[1],
                 has_bias ? e->user_md[2] : NULL, any[2], strides, dilates, pad_l, pad_r, attr) == dnnl_success;
  ok = ok && rx_dnnl_adopt(e, pd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (attr) dnnl_primitive_attr_destroy(attr);
  for (int i = 0; i < 3; ++i)
    if (any[i]) dnnl_memory_desc_destroy(any[i]);
  if (!ok) {
    rx_dnnl_free_entry(e);
    return NULL;
  }
  return e;
}

/* The cached convolution for `key`, created on first use; NULL when oneDNN refuses it. *owned is set when
   the entry is not in the cache (it is full) and the caller must free it. */
static rx_dnnl_conv* rx_dnnl_get(const int64_t* key, int* owned) {
  *owned = 0;
  pthread_mutex_lock(&rx_dnnl_lock);
  rx_dnnl_conv* e = rx_dnnl_cache;
  while (e && memcmp(e->key, key, sizeof e->key) != 0) e = e->next;
  if (!e) {
    e = rx_dnnl_create(key);
    if (e && rx_dnnl_cached < RX_DNNL_CACHE_MAX) {
      e->next = rx_dnnl_cache;
      rx_dnnl_cache = e;
      ++rx_dnnl_cached;
    } else if (e) {
      *owned = 1;
    }
  }
  pthread_mutex_unlock(&rx_dnnl_lock);
  return e;
}

/* relu or relu6 (rx_conv_act) in place, NaN kept as relax.relu
   (maximum(x, 0)) and relax.clip keep it: oneDNN's relu and clip post-ops
   turn NaN into 0, so unless the result is proven NaN-free
   (rx_dnnl_nan_free) the epilogue is this pass instead. */
static void rx_dnnl_activate(float* Y, int64_t count, int act) {
  /* `if (parallel: ...)`: a bare `if` clause on `parallel for simd` applies
     to the simd construct too, so below the threshold the loop ran scalar */
  if (act == 2) {
#pragma omp parallel for simd if (parallel : count >= 65536) schedule(static)
    for (int64_t i = 0; i < count; ++i) Y[i] = rx_conv_act(Y[i], 2);
  } else {
#pragma omp parallel for simd if (parallel : count >= 65536) schedule(static)
    for (int64_t i = 0; i < count; ++i) Y[i] = rx_conv_act(Y[i], 1);
  }
}

/* A 64-byte aligned buffer of `bytes` (at least one byte), or NULL. */
static void* rx_dnnl_buffer(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  return aligned_alloc(64, rounded ? rounded : 64);
}

/* `e`'s reordered copy of the constant weights W, made on first use on
   `stream`; NULL when it cannot be made (the caller falls back). Under the
   cache's lock: a second thread asking meanwhile waits for the first copy
   instead of making its own. */
static const void* rx_dnnl_const_weights(rx_dnnl_conv* e, const float* W, dnnl_stream_t stream) {
  pthread_mutex_lock(&rx_dnnl_lock);
  rx_dnnl_weights* r = e->weights;
  while (r && r->W != W) r = r->next;
  if (!r) {
    dnnl_memory_t from = NULL, to = NULL;
    void* data = rx_dnnl_buffer(dnnl_memory_desc_get_size(e->conv_md[1]));
    int ok = data && dnnl_memory_create(&from, e->user_md[1], rx_dnnl_engine, (void*)W) == dnnl_success &&
             dnnl_memory_create(&to, e->conv_md[1], rx_dnnl_engine, data) == dnnl_success;
    if (ok) {
      dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
      ok = dnnl_primitive_execute(e->reorder[1], stream, 2, args) == dnnl_success;
      ok = dnnl_stream_wait(stream) == dnnl_success && ok;
    }
    if (from) dnnl_memory_destroy(from);
    if (to) dnnl_memory_destroy(to);
    r = ok ? malloc(sizeof *r) : NULL;
    if (r) {
      *r = (rx_dnnl_weights){W, data, e->weights};
      e->weights = r;
    } else {
      free(data);
    }
  }
  const void* kept = r ? r->data : NULL;
  pthread_mutex_unlock(&rx_dnnl_lock);
  return kept;
}

void rx_dnnl_forget_weights(const void* lo, const void* hi) {
  pthread_mutex_lock(&rx_dnnl_lock);
  for (rx_dnnl_conv* e = rx_dnnl_cache; e; e = e->next)
    for (rx_dnnl_weights** r = &e->weights; *r;) {
      uintptr_t at = (uintptr_t)(*r)->W;
      if (at >= (uintptr_t)lo && at < (uintptr_t)hi) {
        rx_dnnl_weights* gone = *r;
        *r = gone->next;
        free(gone->data);
        free(gone);
      } else {
        r = &(*r)->next;
      }
    }
  rx_dnnl_forget_bounds(lo, hi);
  pthread_mutex_unlock(&rx_dnnl_lock);
}

/* Runs the convolution `e` (cached when `cached`, so it may keep constant
   weights); 0 on success, 1 when oneDNN or an allocation failed. */
static int rx_dnnl_run(rx_dnnl_conv* e, int cached, const float* X, const float* W, int const_weights,
                       const float* bias, const float* R, float* Y) {
  dnnl_stream_t stream = NULL;
  dnnl_memory_t mem[8] = {NULL}, residual = NULL;
  void* buf[4] = {NULL};
  int ok = dnnl_stream_create(&stream, rx_dnnl_engine, dnnl_stream_default_flags) == dnnl_success;
  /* the weights already in the convolution's layout (kept constant weights), or NULL */
  const void* wconv = NULL;
  if (ok && e->reorder[1] && const_weights && cached) ok = (wconv = rx_dnnl_const_weights(e, W, stream)) != NULL;
  /* user src, weights, bias, dst; conv src, weights, dst; scratchpad */
  void* user[4] = {(void*)X, (void*)W, (void*)bias, Y};
  for (int i = 0; i < 4 && ok; ++i)
    if (i != 2 || bias) ok = dnnl_memory_create(&mem[i], e->user_md[i], rx_dnnl_engine, user[i]) == dnnl_success;
  if (ok && RX_DNNL_RESIDUAL(e->key))
    ok = dnnl_memory_create(&residual, e->user_md[3], rx_dnnl_engine, (void*)R) == dnnl_success;
  for (int i = 0; i < 3 && ok; ++i) {
    int user_index = i == 2 ? 3 : i;
    if (!e->reorder[i]) {
      mem[4 + i] = mem[user_index];
      continue;
    }
    void* data = i == 1 && wconv ? (void*)wconv
                                 : (buf[i] = rx_dnnl_buffer(dnnl_memory_desc_get_size(e->conv_md[i])));
    ok = data && dnnl_memory_create(&mem[4 + i], e->conv_md[i], rx_dnnl_engine, data) == dnnl_success;
  }
  if (ok && e->scratch_bytes) {
    dnnl_memory_desc_t smd = NULL;
    dnnl_dims_t bytes = {(dnnl_dim_t)e->scratch_bytes};
    buf[3] = rx_dnnl_buffer(e->scratch_bytes);
    ok = buf[3] && dnnl_memory_desc_create_with_tag(&smd, 1, bytes, dnnl_u8, dnnl_a) == dnnl_success &&
         dnnl_memory_create(&mem[7], smd, rx_dnnl_engine, buf[3]) == dnnl_success;
    if (smd) dnnl_memory_desc_destroy(smd);
  }
  for (int i = 0; i < 2 && ok; ++i)
    if (e->reorder[i] && !(i == 1 && wconv)) {
      dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, mem[i]}, {DNNL_ARG_TO, mem[4 + i]}};
      ok = dnnl_primitive_execute(e->reorder[i], stream, 2, args) == dnnl_success;
    }
  if (ok) {
    dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, mem[4]}, {DNNL_ARG_WEIGHTS, mem[5]}, {DNNL_ARG_DST, mem[6]}};
    int nargs = 3;
    if (bias) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mem[2]};
    if (residual) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, residual};
    if (mem[7]) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, mem[7]};
    ok = dnnl_primitive_execute(e->conv, stream, nargs, args) == dnnl_success;
  }
  if (ok && e->reorder[2]) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, mem[6]}, {DNNL_ARG_TO, mem[3]}};
    ok = dnnl_primitive_execute(e->reorder[2], stream, 2, args) == dnnl_success;
  }
  if (stream) {
    ok = dnnl_stream_wait(stream) == dnnl_success && ok;
    dnnl_stream_destroy(stream);
  }
  for (int i = 0; i < 3; ++i)
    if (e->reorder[i] && mem[4 + i]) dnnl_memory_destroy(mem[4 + i]);
  for (int i = 0; i < 4; ++i)
    if (mem[i]) dnnl_memory_destroy(mem[i]);
  if (mem[7]) dnnl_memory_destroy(mem[7]);
  if (residual) dnnl_memory_destroy(residual);
  for (int i = 0; i < 4; ++i) free(buf[i]);
  return !ok;
}

/* Runs the cached primitive for `key` (created on first use) on the buffers; 0 on success. When oneDNN
   refuses it or an allocation fails, counts a fallback and returns 1: the caller then computes the result
   with its direct loops (a library call has no error path, so it never leaves its output unwritten). */
static int rx_dnnl_execute(const int64_t* key, const float* X, const float* W, int const_weights,
                           const float* bias, const float* R, float* Y) {
  int owned = 0;
#ifdef RX_TEST_DNNL_DIRECT /* tests: oneDNN refusing everything */
  rx_dnnl_conv* e = NULL;
  (void)key;
#else
  rx_dnnl_conv* e = rx_dnnl_get(key, &owned);
#endif
  int failed = !e || rx_dnnl_run(e, !owned, X, W, const_weights, bias, R, Y);
  if (owned) rx_dnnl_free_entry(e);
  if (failed) __atomic_add_fetch(&rx_dnnl_fallback_count, 1, __ATOMIC_RELAXED);
  return failed;
}

/* max over output channels of sum |w| over the channel's taps, for a constant weight buffer: kept per
   address (and shape), under rx_dnnl_lock, dropped with the weights (rx_dnnl_forget_weights). A conv's
   weights hold each channel's taps together (o x taps); a dense layer's are taps x o (k x n), `by_column`. */
typedef struct rx_dnnl_bound {
  const float* W;
  int64_t o, taps, by_column;
  float bound; /* INFINITY when a weight is not finite */
  struct rx_dnnl_bound* next;
} rx_dnnl_bound;
static rx_dnnl_bound* rx_dnnl_bounds;

static float rx_dnnl_weight_bound(const float* W, int64_t o, int64_t taps, int by_column) {
  pthread_mutex_lock(&rx_dnnl_lock);
  rx_dnnl_bound* r = rx_dnnl_bounds;
  while (r && !(r->W == W && r->o == o && r->taps == taps && r->by_column == by_column)) r = r->next;
  if (!r) {
    double* sums = calloc((size_t)(o > 0 ? o : 1), sizeof *sums);
    if (sums && (r = malloc(sizeof *r)) != NULL) {
      float bound = 0.0f;
      /* in memory order: a dense layer's columns summed row by row */
      if (by_column) {
        for (int64_t j = 0; j < taps; ++j)
          for (int64_t oc = 0; oc < o; ++oc) sums[oc] += fabs((double)W[j * o + oc]);
      } else {
        for (int64_t oc = 0; oc < o; ++oc)
          for (int64_t j = 0; j < taps; ++j) sums[oc] += fabs((double)W[oc * taps + j]);
      }
      for (int64_t oc = 0; oc < o; ++oc) {
        if (!(sums[oc] <= FLT_MAX)) { /* a NaN or infinite weight, or a sum past float's range */
          bound = INFINITY;
          break;
        }
        if (sums[oc] > bound) bound = (float)sums[oc] * (1.0f + FLT_EPSILON);
      }
      *r = (rx_dnnl_bound){W, o, taps, by_column, bound, rx_dnnl_bounds};
      rx_dnnl_bounds = r;
    }
    free(sums);
  }
  float bound = r ? r->bound : INFINITY;
  pthread_mutex_unlock(&rx_dnnl_lock);
  return bound;
}

static void rx_dnnl_forget_bounds(const void* lo, const void* hi) {
  for (rx_dnnl_bound** r = &rx_dnnl_bounds; *r;) {
    uintptr_t at = (uintptr_t)(*r)->W;
    if (at >= (uintptr_t)lo && at < (uintptr_t)hi) {
      rx_dnnl_bound* gone = *r;
      *r = gone->next;
      free(gone);
    } else {
      r = &(*r)->next;
    }
  }
}

/* The largest |x| of X's `count` floats, as the largest of their bits with the sign cleared (IEEE floats
   order as their bits; NaN and inf are the largest): INFINITY when one is not finite. One read of X. */
static float rx_dnnl_abs_max(const float* X, int64_t count) {
  uint32_t top = 0;
#pragma omp parallel for simd reduction(max : top) if (parallel : count >= 65536) schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    uint32_t a;
    memcpy(&a, X + i, sizeof a);
    a &= 0x7fffffffu;
    top = a > top ? a : top;
  }
  if (top >= 0x7f800000u) return INFINITY; /* inf or NaN */
  float max;
  memcpy(&max, &top, sizeof max);
  return max;
}

/* Whether a conv (or, `by_column`, a dense layer) of X by the constant W (+ bias) (+ the residual R of
   `r_count` floats) gives no NaN nor infinity, so oneDNN's clip post-op (NaN -> 0) agrees with relu /
   relu6 (NaN kept) and its gelu_erf sees finite values only: every x, weight, bias and residual finite,
   and max|x| * max_oc sum|w| + max|b| + max|r| (the largest any partial sum can be) far enough below
   FLT_MAX that no sum overflows to infinity, rounding included (taps <= 2^22: at most 1.3x growth).
   One read of X (none when `known_max` >= 0 bounds it) and of R. */
static int rx_dnnl_nan_free(const float* X, int64_t count, float known_max, const float* W, int64_t o,
                            int64_t taps, int by_column, const float* bias, const float* R, int64_t r_count) {
  if (taps > ((int64_t)1 << 22)) return 0;
  float wb = rx_dnnl_weight_bound(W, o, taps, by_column);
  if (!(wb < FLT_MAX)) return 0;
  double bmax = 0.0;
  for (int64_t i = 0; bias && i < o; ++i) {
    double b = fabs((double)bias[i]);
    if (!(b <= FLT_MAX)) return 0;
    if (b > bmax) bmax = b;
  }
  float xmax = known_max >= 0.0f ? known_max : rx_dnnl_abs_max(X, count); /* X's bound when known: no read */
  float rmax = R ? rx_dnnl_abs_max(R, r_count) : 0.0f;
  if (!(xmax < INFINITY && rmax < INFINITY)) return 0;
  return (double)xmax * wb + bmax + rmax < 0.5 * FLT_MAX;
}

/* The result (address and element count) of the last constant-weight conv + relu6 call on this thread,
   when it ran its relu6 as the post-op (so it is in [0, 6]); NULL when that call did not. Every such call
   sets it, so rx_dnnl_conv2d_cw_after6 finds its data here only when the call that made the data fused. */
static _Thread_local const float* rx_dnnl_six_at;
static _Thread_local int64_t rx_dnnl_six_count;

/* Y = act(Y + R) in place, NaN kept (rx_conv_act): a residual conv's epilogue when oneDNN did not run it. */
static void rx_dnnl_add_activate(float* Y, const float* R, int64_t count, int act) {
#pragma omp parallel for simd if (parallel : count >= 65536) schedule(static)
  for (int64_t i = 0; i < count; ++i) Y[i] = rx_conv_act(Y[i] + R[i], act);
}

/* rx_dnnl_conv2d, rx_dnnl_conv2d_cw and rx_dnnl_conv2d_cw_after6. */
static void rx_dnnl_conv2d_any(const float* X, const float* W, int const_weights, int after6, const float* bias,
                               const float* R, float* Y, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o,
                               int64_t kh, int64_t kw, int64_t oh, int64_t ow, int64_t sh, int64_t sw, int64_t pt,
                               int64_t pl, int64_t pb, int64_t pr, int64_t dh, int64_t dw, int64_t groups, int act,
                               int nhwc) {
  int six = after6 && X == rx_dnnl_six_at && n * c * h * w == rx_dnnl_six_count; /* X in [0, 6] */
  int bounds_six = const_weights && act == 2 && !R;
  if (const_weights && act == 2) rx_dnnl_six_at = NULL;
  int64_t count = n * o * oh * ow;
  if (n == 0 || o == 0 || oh == 0 || ow == 0) return; /* an empty output: nothing to write */
  if (c == 0 || h == 0 || w == 0 || kh == 0 || kw == 0) {
    /* oneDNN takes no zero-sized input: the output is the bias (then the residual and the activation) */
    rx_dnnl_conv2d_direct(X, W, bias, Y, n, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, groups,
                          R ? 0 : act, nhwc);
    if (R) rx_dnnl_add_activate(Y, R, count, act);
    return;
  }
  /* the activation fused as a post-op when no NaN can arise (constant weights: their bound is kept); proving
     it reads X, which costs more than the pass it saves when X is larger than Y (a 1x1 conv that narrows
     the channels: SqueezeNet's squeeze convs, a bottleneck's first conv), unless X's bound is known; not for
     a grouped conv that is not depthwise (ShuffleNet's): oneDNN runs those as a GEMM-based conv whose
     post-ops are a scalar reference loop, slower than our pass. A residual is read for the proof too. */
  int fused = act && const_weights && (six || c * h * w <= o * oh * ow) && (groups == 1 || groups == c) &&
              rx_dnnl_nan_free(X, n * c * h * w, six ? 6.0f : -1.0f, W, o, c / groups * kh * kw, 0, bias, R,
                               count);
  int64_t operands = (bias ? RX_DNNL_HAS_BIAS : 0) | (R ? RX_DNNL_HAS_RESIDUAL : 0);
  int64_t key[RX_DNNL_KEY] = {n,  c,  h,  w,  o,  kh, kw,     oh, ow, sh, sw, pt, pl, pb, pr, dh,
                              dw, groups, fused ? act | RX_DNNL_POST_OP : act, operands, nhwc, RX_DNNL_CONV};
  if (rx_dnnl_execute(key, X, W, const_weights, bias, R, Y)) {
    if (R) {
      /* without the residual post-op (an NCHW destination oneDNN blocks may refuse it), then a pass */
      key[18] = 0;
      key[19] &= ~RX_DNNL_HAS_RESIDUAL;
      if (rx_dnnl_execute(key, X, W, const_weights, bias, NULL, Y))
        rx_dnnl_conv2d_direct(X, W, bias, Y, n, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, groups, 0,
                              nhwc);
      rx_dnnl_add_activate(Y, R, count, act);
    } else {
      rx_dnnl_conv2d_direct(X, W, bias, Y, n, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, groups, act,
                            nhwc);
    }
  } else if (act && !fused) {
    rx_dnnl_activate(Y, count, act);
  } else if (fused) {
    __atomic_add_fetch(&rx_dnnl_fused_count, 1, __ATOMIC_RELAXED);
    if (bounds_six) {
      rx_dnnl_six_at = Y;
      rx_dnnl_six_count = count;
    }
  }
}

void rx_dnnl_conv2d(const float* X, const float* W, const float* bias, const float* R, float* Y, int64_t n, int64_t c,
                    int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh, int64_t ow, int64_t sh,
                    int64_t sw, int64_t pt, int64_t pl, int64_t pb, int64_t pr, int64_t dh, int64_t dw,
                    int64_t groups, int act, int nhwc) {
  rx_dnnl_conv2d_any(X, W, 0, 0, bias, R, Y, n, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pl, pb, pr, dh, dw, groups,
                     act, nhwc);
}

void rx_dnnl_conv2d_cw(const float* X, const float* W, const float* bias, const float* R, float* Y, int64_t n,
                       int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                       int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t pb, int64_t pr, int64_t dh, int64_t dw,
                       int64_t groups, int act, int nhwc) {
  rx_dnnl_conv2d_any(X, W, 1, 0, bias, R, Y, n, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pl, pb, pr, dh, dw, groups,
                     act, nhwc);
}

void rx_dnnl_conv2d_cw_after6(const float* X, const float* W, const float* bias, const float* R, float* Y, int64_t n,
                              int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh,
                              int64_t ow, int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t pb, int64_t pr,
                              int64_t dh, int64_t dw, int64_t groups, int act, int nhwc) {
  rx_dnnl_conv2d_any(X, W, 1, 1, bias, R, Y, n, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pl, pb, pr, dh, dw, groups,
                     act, nhwc);
}

/* A dense layer's activation in place: rx_gelu, or rx_dnnl_activate's relu. */
static void rx_dnnl_dense_act(float* C, int64_t count, int act) {
  if (act == RX_DNNL_GELU) {
#pragma omp parallel for simd if (parallel : count >= 65536) schedule(static)
    for (int64_t i = 0; i < count; ++i) C[i] = rx_gelu(C[i]);
  } else if (act) {
    rx_dnnl_activate(C, count, act);
  }
}

/* C (batch x m x n) = A (batch x m x k) @ B (batch x k x n, or stored batch x n x k when transposed_b)
   [+ bias, a row of n], in plain loops: what runs when oneDNN refuses a dense layer or a batched matmul, or
   k is 0 (oneDNN takes no zero-sized tensor). */
static void rx_dnnl_gemm_direct(const float* A, const float* B, const float* bias, float* C, int64_t batch,
                                int64_t m, int64_t k, int64_t n, int transposed_b) {
#pragma omp parallel for collapse(2) schedule(static) if (batch * m * n * k >= 65536)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < m; ++i) {
      const float* a = A + (b * m + i) * k;
      const float* w = B + b * k * n;
      float* row = C + (b * m + i) * n;
      for (int64_t j = 0; j < n; ++j) row[j] = bias ? bias[j] : 0.0f;
      for (int64_t p = 0; p < k; ++p)
        for (int64_t j = 0; j < n; ++j) row[j] += a[p] * (transposed_b ? w[j * k + p] : w[p * n + j]);
    }
}

void rx_dnnl_dense(const float* A, const float* W, const float* bias, const float* R, float* C, int64_t m,
                   int64_t k, int64_t n, int act) {
  if (m == 0 || n == 0) return; /* an empty output: nothing to write */
  /* the activation as oneDNN's post-op when the result is proven finite (reading A costs more than the
     pass it saves when A is the larger, k > n) */
  int fused = act && k > 0 && k <= n && rx_dnnl_nan_free(A, m * k, -1.0f, W, n, k, 1, bias, R, m * n);
  int64_t operands = (bias ? RX_DNNL_HAS_BIAS : 0) | (R ? RX_DNNL_HAS_RESIDUAL : 0);
  int64_t key[RX_DNNL_KEY] = {m, k, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                              fused ? act | RX_DNNL_POST_OP : act, operands, 0, RX_DNNL_DENSE};
  if (k == 0 || rx_dnnl_execute(key, A, W, 1, bias, R, C)) {
    rx_dnnl_gemm_direct(A, W, bias, C, 1, m, k, n, 0);
    if (R) rx_dnnl_add_activate(C, R, m * n, 0); /* the activation (gelu too) after it */
    fused = 0;
  }
  if (fused)
    __atomic_add_fetch(&rx_dnnl_fused_count, 1, __ATOMIC_RELAXED);
  else
    rx_dnnl_dense_act(C, m * n, act);
}

void rx_dnnl_matmul(const float* A, const float* B, float* C, int64_t batch, int64_t m, int64_t k, int64_t n,
                    int transposed_b) {
  if (batch == 0 || m == 0 || n == 0) return; /* an empty output: nothing to write */
  int64_t key[RX_DNNL_KEY] = {batch, m, k, n, transposed_b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                              RX_DNNL_MATMUL};
  if (k == 0 || rx_dnnl_execute(key, A, B, 0, NULL, NULL, C))
    rx_dnnl_gemm_direct(A, B, NULL, C, batch, m, k, n, transposed_b);
}
