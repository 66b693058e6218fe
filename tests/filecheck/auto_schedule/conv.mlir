// RUN: relax-xdsl-opt %s -p legalize,auto-schedule | filecheck %s

// A stride-1 conv is a contraction like a matmul: its input column xx - 1 + kx
// is contiguous in the output column as in the tap, and the weight is
// invariant in the output column, so auto-schedule register-tiles it (4 output
// rows x 16 columns per output channel, the taps with their padding tests as
// the reduction; the images in parallel, the rest of the nest serial). With stride 2 the output column reads the input at a stride:
// the taps' order stays (lower-tir's default).
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 2, h, 16], f32>, %w: !relax.tensor<[3, 2, 3, 3], f32>, %w2: !relax.tensor<[3, 3, 3, 3], f32>) -> !relax.tensor<[n, 3, (h - 3) floordiv 2 + 1, 7], f32> {
    %0 = relax.conv2d %x, %w {padding = array<i64: 1, 1>} : (!relax.tensor<[n, 2, h, 16], f32>, !relax.tensor<[3, 2, 3, 3], f32>) -> !relax.tensor<[n, 3, h, 16], f32>
    %1 = relax.conv2d %0, %w2 {strides = array<i64: 2, 2>} : (!relax.tensor<[n, 3, h, 16], f32>, !relax.tensor<[3, 3, 3, 3], f32>) -> !relax.tensor<[n, 3, (h - 3) floordiv 2 + 1, 7], f32>
    relax.return %1 : !relax.tensor<[n, 3, (h - 3) floordiv 2 + 1, 7], f32>
  }
}

// CHECK:      tir.prim_func @conv2d(
// CHECK:        tir.for %{{[0-9]+}} = %{{.*}} parallel {
// CHECK-NEXT:     tir.for %{{[0-9]+}} = %{{.*}} step %{{[0-9]+}} {
// CHECK-NEXT:       tir.for %{{[0-9]+}} = %{{.*}} step %{{[0-9]+}} {
// CHECK-NEXT:         tir.for %{{[0-9]+}} = %{{.*}} step %{{[0-9]+}} {
// CHECK-NEXT:           %[[ACC:[0-9]+]] = tir.alloc : !tir.buffer<[4, 16], f32>
// CHECK:          tir.store %{{.*}}, %[[ACC]][
// CHECK:          tir.for %{{[0-9]+}} = %{{.*}} step %{{[0-9]+}} {
// CHECK-NEXT:       tir.for %[[KY:[0-9]+]] = %{{.*}} step %{{[0-9]+}} {
// CHECK-NEXT:         tir.for %[[KX:[0-9]+]] = %{{.*}} step %{{[0-9]+}} {
// CHECK-NEXT:           tir.for %[[R:[0-9]+]] = %{{.*}} unroll {
// CHECK-NEXT:             tir.for %[[C:[0-9]+]] = %{{.*}} vectorize {
// CHECK:                    scf.if
// CHECK-NEXT:                 tir.load %data[
// CHECK:                    tir.store %{{.*}}, %[[ACC]][%[[R]], %[[C]]]
// CHECK:      tir.prim_func @conv2d_1(
// CHECK-NOT:    tir.alloc
// CHECK-NOT:    vectorize
// CHECK:        tir.compute %out
