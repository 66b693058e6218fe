// RUN: relax-xdsl-opt %s -p recognize-attention | filecheck %s

// torch.onnx's scaled_dot_product_attention: K^T as a Transpose of the
// [b, t, heads, d] projection, a padding mask, softmax, Where(IsNaN) and
// the product with V become one relax.attention (scale 1: the exporter
// scaled q already). The key is the projection with heads and t swapped;
// the written-out chain is gone.
builtin.module {
  relax.function @sdpa(%q: !relax.tensor<[b, 2, s, 8], f32>, %k: !relax.tensor<[b, t, 2, 8], f32>, %v: !relax.tensor<[b, 2, t, 4], f32>, %mask: !relax.tensor<[b, 1, 1, t], f32>) -> !relax.tensor<[b, 2, s, 4], f32> {
    %0 = relax.permute_dims %k {axes = array<i64: 0, 2, 3, 1>} : (!relax.tensor<[b, t, 2, 8], f32>) -> !relax.tensor<[b, 2, 8, t], f32>
    %1 = relax.matmul %q, %0 : (!relax.tensor<[b, 2, s, 8], f32>, !relax.tensor<[b, 2, 8, t], f32>) -> !relax.tensor<[b, 2, s, t], f32>
    %2 = relax.add %mask, %1 : (!relax.tensor<[b, 1, 1, t], f32>, !relax.tensor<[b, 2, s, t], f32>) -> !relax.tensor<[b, 2, s, t], f32>
    %3 = relax.softmax %2 : (!relax.tensor<[b, 2, s, t], f32>) -> !relax.tensor<[b, 2, s, t], f32>
    %4 = relax.isnan %3 : (!relax.tensor<[b, 2, s, t], f32>) -> !relax.tensor<[b, 2, s, t], i1>
    %5 = relax.constant dense<0.000000e+00> : tensor<f32>
    %6 = relax.where %4, %5, %3 : (!relax.tensor<[b, 2, s, t], i1>, !relax.tensor<[], f32>, !relax.tensor<[b, 2, s, t], f32>) -> !relax.tensor<[b, 2, s, t], f32>
    %7 = relax.matmul %6, %v : (!relax.tensor<[b, 2, s, t], f32>, !relax.tensor<[b, 2, t, 4], f32>) -> !relax.tensor<[b, 2, s, 4], f32>
    relax.return %7 : !relax.tensor<[b, 2, s, 4], f32>
  }

// CHECK-LABEL: relax.function @sdpa
// CHECK-NEXT:  %[[K:.*]] = relax.permute_dims %k {axes = array<i64: 0, 2, 1, 3>} : (!relax.tensor<[b, t, 2, 8], f32>) -> !relax.tensor<[b, 2, t, 8], f32>
// CHECK-NEXT:  %[[O:.*]] = relax.attention %q, %[[K]], %v, %mask {scale = 1.000000e+00 : f64, zero_nan = true}
// CHECK-NEXT:  relax.return %[[O]]

  // Llama's form: K^T is the key cache transposed in place, no mask, no
  // Where: the key is the cache itself (no op made) and a scalar 0 bias.
  relax.function @plain(%q: !relax.tensor<[b, s, 8], f32>, %k: !relax.tensor<[b, t, 8], f32>, %v: !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32> {
    %0 = relax.permute_dims %k {axes = array<i64: 0, 2, 1>} : (!relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, 8, t], f32>
    %1 = relax.matmul %q, %0 : (!relax.tensor<[b, s, 8], f32>, !relax.tensor<[b, 8, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %2 = relax.softmax %1 : (!relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %3 = relax.matmul %2, %v : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32>
    relax.return %3 : !relax.tensor<[b, s, 8], f32>
  }

// CHECK-LABEL: relax.function @plain
// CHECK-NEXT:  %[[Z:.*]] = relax.constant dense<0.000000e+00> : tensor<f32>
// CHECK-NEXT:  %[[O:.*]] = relax.attention %q, %k, %v, %[[Z]] {scale = 1.000000e+00 : f64} :
// CHECK-NEXT:  relax.return %[[O]]

  // BERT's eager form: the scores divided by sqrt(d) before the mask; the
  // scale is the reciprocal. A multiply by a constant on either side is the
  // scale itself.
  relax.function @divided(%q: !relax.tensor<[b, s, 64], f32>, %kt: !relax.tensor<[b, 64, t], f32>, %v: !relax.tensor<[b, t, 8], f32>, %mask: !relax.tensor<[b, 1, t], f32>) -> !relax.tensor<[b, s, 8], f32> {
    %0 = relax.matmul %q, %kt : (!relax.tensor<[b, s, 64], f32>, !relax.tensor<[b, 64, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %1 = relax.constant dense<8.000000e+00> : tensor<f32>
    %2 = relax.divide %0, %1 : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[b, s, t], f32>
    %3 = relax.add %2, %mask : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[b, 1, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %4 = relax.softmax %3 : (!relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %5 = relax.matmul %4, %v : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32>
    relax.return %5 : !relax.tensor<[b, s, 8], f32>
  }

// CHECK-LABEL: relax.function @divided
// CHECK-NEXT:  %[[K:.*]] = relax.permute_dims %kt {axes = array<i64: 0, 2, 1>}
// CHECK-NEXT:  %[[O:.*]] = relax.attention %q, %[[K]], %v, %mask {scale = 1.250000e-01 : f64} :
// CHECK-NEXT:  relax.return %[[O]]

  relax.function @multiplied(%q: !relax.tensor<[b, s, 8], f32>, %kt: !relax.tensor<[b, 8, t], f32>, %v: !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32> {
    %0 = relax.matmul %q, %kt : (!relax.tensor<[b, s, 8], f32>, !relax.tensor<[b, 8, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %1 = relax.constant dense<2.500000e-01> : tensor<1x1x1xf32>
    %2 = relax.multiply %1, %0 : (!relax.tensor<[1, 1, 1], f32>, !relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %3 = relax.softmax %2 : (!relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %4 = relax.matmul %3, %v : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32>
    relax.return %4 : !relax.tensor<[b, s, 8], f32>
  }

// CHECK-LABEL: relax.function @multiplied
// CHECK:       relax.attention {{.*}} {scale = 2.500000e-01 : f64} :
// CHECK-NOT:   relax.multiply
// CHECK:       relax.return

  // Near misses, each left as written:
  // the scale after the mask (not attention's order: scale, then bias),
  relax.function @scaled_after_mask(%q: !relax.tensor<[b, s, 8], f32>, %kt: !relax.tensor<[b, 8, t], f32>, %v: !relax.tensor<[b, t, 8], f32>, %mask: !relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, 8], f32> {
    %0 = relax.matmul %q, %kt : (!relax.tensor<[b, s, 8], f32>, !relax.tensor<[b, 8, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %1 = relax.add %0, %mask : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %2 = relax.constant dense<2.500000e-01> : tensor<f32>
    %3 = relax.multiply %1, %2 : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[b, s, t], f32>
    %4 = relax.softmax %3 : (!relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %5 = relax.matmul %4, %v : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32>
    relax.return %5 : !relax.tensor<[b, s, 8], f32>
  }

// CHECK-LABEL: relax.function @scaled_after_mask
// CHECK-NOT:   relax.attention
// CHECK:       relax.softmax

  // a per-head divisor (not one scalar),
  relax.function @per_head(%q: !relax.tensor<[b, s, 8], f32>, %kt: !relax.tensor<[b, 8, t], f32>, %v: !relax.tensor<[b, t, 8], f32>, %c: !relax.tensor<[b, 1, 1], f32>) -> !relax.tensor<[b, s, 8], f32> {
    %0 = relax.matmul %q, %kt : (!relax.tensor<[b, s, 8], f32>, !relax.tensor<[b, 8, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %1 = relax.divide %0, %c : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[b, 1, 1], f32>) -> !relax.tensor<[b, s, t], f32>
    %2 = relax.softmax %1 : (!relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %3 = relax.matmul %2, %v : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32>
    relax.return %3 : !relax.tensor<[b, s, 8], f32>
  }

// CHECK-LABEL: relax.function @per_head
// CHECK-NOT:   relax.attention
// CHECK:       relax.softmax

  // the scores are needed elsewhere (returned too),
  relax.function @scores_used(%q: !relax.tensor<[b, s, 8], f32>, %kt: !relax.tensor<[b, 8, t], f32>, %v: !relax.tensor<[b, t, 8], f32>) -> tuple<!relax.tensor<[b, s, 8], f32>, !relax.tensor<[b, s, t], f32>> {
    %0 = relax.matmul %q, %kt : (!relax.tensor<[b, s, 8], f32>, !relax.tensor<[b, 8, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %1 = relax.softmax %0 : (!relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %2 = relax.matmul %1, %v : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32>
    %3 = relax.tuple %2, %0 : (!relax.tensor<[b, s, 8], f32>, !relax.tensor<[b, s, t], f32>)
    relax.return %3 : tuple<!relax.tensor<[b, s, 8], f32>, !relax.tensor<[b, s, t], f32>>
  }

// CHECK-LABEL: relax.function @scores_used
// CHECK-NOT:   relax.attention
// CHECK:       relax.softmax

  // the softmax runs over the query axis, not the keys,
  relax.function @wrong_axis(%q: !relax.tensor<[b, s, 8], f32>, %kt: !relax.tensor<[b, 8, t], f32>, %v: !relax.tensor<[b, s, 8], f32>) -> !relax.tensor<[b, t, 8], f32> {
    %0 = relax.matmul %q, %kt : (!relax.tensor<[b, s, 8], f32>, !relax.tensor<[b, 8, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %1 = relax.softmax %0 {axis = 1 : i64} : (!relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %2 = relax.permute_dims %1 {axes = array<i64: 0, 2, 1>} : (!relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, t, s], f32>
    %3 = relax.matmul %2, %v : (!relax.tensor<[b, t, s], f32>, !relax.tensor<[b, s, 8], f32>) -> !relax.tensor<[b, t, 8], f32>
    relax.return %3 : !relax.tensor<[b, t, 8], f32>
  }

// CHECK-LABEL: relax.function @wrong_axis
// CHECK-NOT:   relax.attention
// CHECK:       relax.softmax

  // float64 (no library call takes it: the written-out form stays),
  relax.function @f64(%q: !relax.tensor<[b, s, 8], f64>, %kt: !relax.tensor<[b, 8, t], f64>, %v: !relax.tensor<[b, t, 8], f64>) -> !relax.tensor<[b, s, 8], f64> {
    %0 = relax.matmul %q, %kt : (!relax.tensor<[b, s, 8], f64>, !relax.tensor<[b, 8, t], f64>) -> !relax.tensor<[b, s, t], f64>
    %1 = relax.softmax %0 : (!relax.tensor<[b, s, t], f64>) -> !relax.tensor<[b, s, t], f64>
    %2 = relax.matmul %1, %v : (!relax.tensor<[b, s, t], f64>, !relax.tensor<[b, t, 8], f64>) -> !relax.tensor<[b, s, 8], f64>
    relax.return %2 : !relax.tensor<[b, s, 8], f64>
  }

// CHECK-LABEL: relax.function @f64
// CHECK-NOT:   relax.attention
// CHECK:       relax.softmax

  // the query broadcasts over the key's batch (not the op's equal batch dims),
  relax.function @broadcast_q(%q: !relax.tensor<[1, s, 8], f32>, %kt: !relax.tensor<[b, 8, t], f32>, %v: !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32> {
    %0 = relax.matmul %q, %kt : (!relax.tensor<[1, s, 8], f32>, !relax.tensor<[b, 8, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %1 = relax.softmax %0 : (!relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %2 = relax.matmul %1, %v : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32>
    relax.return %2 : !relax.tensor<[b, s, 8], f32>
  }

// CHECK-LABEL: relax.function @broadcast_q
// CHECK-NOT:   relax.attention
// CHECK:       relax.softmax

  // and a Where that keeps something other than 0 for NaN.
  relax.function @where_one(%q: !relax.tensor<[b, s, 8], f32>, %kt: !relax.tensor<[b, 8, t], f32>, %v: !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32> {
    %0 = relax.matmul %q, %kt : (!relax.tensor<[b, s, 8], f32>, !relax.tensor<[b, 8, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %1 = relax.softmax %0 : (!relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %2 = relax.isnan %1 : (!relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], i1>
    %3 = relax.constant dense<1.000000e+00> : tensor<f32>
    %4 = relax.where %2, %3, %1 : (!relax.tensor<[b, s, t], i1>, !relax.tensor<[], f32>, !relax.tensor<[b, s, t], f32>) -> !relax.tensor<[b, s, t], f32>
    %5 = relax.matmul %4, %v : (!relax.tensor<[b, s, t], f32>, !relax.tensor<[b, t, 8], f32>) -> !relax.tensor<[b, s, 8], f32>
    relax.return %5 : !relax.tensor<[b, s, 8], f32>
  }

// CHECK-LABEL: relax.function @where_one
// CHECK-NOT:   relax.attention
// CHECK:       relax.where
}
