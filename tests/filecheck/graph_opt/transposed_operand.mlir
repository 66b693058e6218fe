// RUN: relax-xdsl-opt %s -p simplify-layout | filecheck %s

// Attention's K^T as the exporters write it. The dynamo exporter's batched
// transpose through rank-3 reshapes is one permute_dims of the last two
// axes; torch's scale on K^T moves to q, so the transpose meets the matmul.
builtin.module {
  relax.function @main(%q: !relax.tensor<[b, 8, s, 32], f32>, %k: !relax.tensor<[b, 8, n, 32], f32>) -> !relax.tensor<[b, 8, s, n], f32> {
    %0 = relax.reshape %k {shape = #relax.dims<[8*b, n, 32]>} : (!relax.tensor<[b, 8, n, 32], f32>) -> !relax.tensor<[8*b, n, 32], f32>
    %1 = relax.permute_dims %0 {axes = array<i64: 0, 2, 1>} : (!relax.tensor<[8*b, n, 32], f32>) -> !relax.tensor<[8*b, 32, n], f32>
    %2 = relax.reshape %1 {shape = #relax.dims<[b, 8, 32, n]>} : (!relax.tensor<[8*b, 32, n], f32>) -> !relax.tensor<[b, 8, 32, n], f32>
    %c = relax.constant dense<0.5> : tensor<f32>
    %3 = relax.multiply %q, %c : (!relax.tensor<[b, 8, s, 32], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[b, 8, s, 32], f32>
    %4 = relax.multiply %2, %c : (!relax.tensor<[b, 8, 32, n], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[b, 8, 32, n], f32>
    %5 = relax.matmul %3, %4 : (!relax.tensor<[b, 8, s, 32], f32>, !relax.tensor<[b, 8, 32, n], f32>) -> !relax.tensor<[b, 8, s, n], f32>
    relax.return %5 : !relax.tensor<[b, 8, s, n], f32>
  }
}

// CHECK:      %0 = relax.permute_dims %k {axes = array<i64: 0, 1, 3, 2>} : (!relax.tensor<[b, 8, n, 32], f32>) -> !relax.tensor<[b, 8, 32, n], f32>
// CHECK-NEXT: %c = relax.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT: %1 = relax.multiply %q, %c
// CHECK-NEXT: %2 = relax.multiply %1, %c : (!relax.tensor<[b, 8, s, 32], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[b, 8, s, 32], f32>
// CHECK-NEXT: %3 = relax.matmul %2, %0
// CHECK-NEXT: relax.return %3
// CHECK-NOT:  relax.reshape
