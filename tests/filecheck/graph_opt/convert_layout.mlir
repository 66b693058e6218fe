// RUN: relax-xdsl-opt %s -p convert-layout | filecheck %s
//
// Both convs go channels last (oneDNN installed, as CI has it); the bias constant is
// permuted, relu, the residual add and the max-pool run on NHWC forms, and the data is
// transposed only into the first conv and out of the pool.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 2, h, w], f32>) -> !relax.tensor<[n, 4, h floordiv 2, w floordiv 2], f32> {
    %0 = relax.constant dense<1.000000e+00> : tensor<4x2x3x3xf32>
    %1 = relax.conv2d %x, %0 {padding = array<i64: 1, 1>} : (!relax.tensor<[n, 2, h, w], f32>, !relax.tensor<[4, 2, 3, 3], f32>) -> !relax.tensor<[n, 4, h, w], f32>
    %2 = relax.constant dense<5.000000e-01> : tensor<4x1x1xf32>
    %3 = relax.add %1, %2 : (!relax.tensor<[n, 4, h, w], f32>, !relax.tensor<[4, 1, 1], f32>) -> !relax.tensor<[n, 4, h, w], f32>
    %4 = relax.relu %3 : (!relax.tensor<[n, 4, h, w], f32>) -> !relax.tensor<[n, 4, h, w], f32>
    %5 = relax.constant dense<1.000000e+00> : tensor<4x1x3x3xf32>
    %6 = relax.conv2d %4, %5 {padding = array<i64: 1, 1>, groups = 4 : i64} : (!relax.tensor<[n, 4, h, w], f32>, !relax.tensor<[4, 1, 3, 3], f32>) -> !relax.tensor<[n, 4, h, w], f32>
    %7 = relax.add %6, %4 : (!relax.tensor<[n, 4, h, w], f32>, !relax.tensor<[n, 4, h, w], f32>) -> !relax.tensor<[n, 4, h, w], f32>
    %8 = relax.max_pool2d %7 {pool_size = array<i64: 2, 2>, strides = array<i64: 2, 2>} : (!relax.tensor<[n, 4, h, w], f32>) -> !relax.tensor<[n, 4, h floordiv 2, w floordiv 2], f32>
    relax.return %8 : !relax.tensor<[n, 4, h floordiv 2, w floordiv 2], f32>
  }
}

// CHECK:      %[[X:.*]] = relax.permute_dims %x {axes = array<i64: 0, 2, 3, 1>} : (!relax.tensor<[n, 2, h, w], f32>) -> !relax.tensor<[n, h, w, 2], f32>
// CHECK-NEXT: %[[C1:.*]] = relax.conv2d %[[X]], %{{.*}} {padding = array<i64: 1, 1>, data_layout = "NHWC"} : {{.*}} -> !relax.tensor<[n, h, w, 4], f32>
// CHECK-NEXT: %[[B:.*]] = relax.constant dense<5.000000e-01> : tensor<1x1x1x4xf32>
// CHECK-NEXT: %[[A:.*]] = relax.add %[[C1]], %[[B]] : (!relax.tensor<[n, h, w, 4], f32>, !relax.tensor<[1, 1, 1, 4], f32>) -> !relax.tensor<[n, h, w, 4], f32>
// CHECK-NEXT: %[[R:.*]] = relax.relu %[[A]] : (!relax.tensor<[n, h, w, 4], f32>) -> !relax.tensor<[n, h, w, 4], f32>
// CHECK-NEXT: %[[W2:.*]] = relax.constant
// CHECK-NEXT: %[[C2:.*]] = relax.conv2d %[[R]], %[[W2]] {padding = array<i64: 1, 1>, groups = 4 : i64, data_layout = "NHWC"}
// CHECK-NEXT: %[[S:.*]] = relax.add %[[C2]], %[[R]] : (!relax.tensor<[n, h, w, 4], f32>, !relax.tensor<[n, h, w, 4], f32>) -> !relax.tensor<[n, h, w, 4], f32>
// CHECK-NEXT: %[[P:.*]] = relax.max_pool2d %[[S]] {pool_size = array<i64: 2, 2>, strides = array<i64: 2, 2>, layout = "NHWC"} : (!relax.tensor<[n, h, w, 4], f32>) -> !relax.tensor<[n, h floordiv 2, w floordiv 2, 4], f32>
// CHECK-NEXT: %[[Y:.*]] = relax.permute_dims %[[P]] {axes = array<i64: 0, 3, 1, 2>} : (!relax.tensor<[n, h floordiv 2, w floordiv 2, 4], f32>) -> !relax.tensor<[n, 4, h floordiv 2, w floordiv 2], f32>
// CHECK-NEXT: relax.return %[[Y]]
// CHECK-NOT:  relax.permute_dims
