// RUN: relax-xdsl-opt %s -p "offload{lib=blas}" | filecheck %s

// conv2d + a per-channel bias, (1, o, 1, 1) or (o, 1, 1) on either side of
// the add, [+ relu] is one library call (the bias is the GEMM's C operand,
// relu runs per image); matmul + bias + gelu is one dense call. The library
// functions are declared once each, with the bias buffer between the
// weights and the output.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 3, h, h], f32>, %w: !relax.tensor<[8, 3, 3, 3], f32>, %b: !relax.tensor<[1, 8, 1, 1], f32>, %c: !relax.tensor<[8, 1, 1], f32>, %xd: !relax.tensor<[n, 16], f32>, %wd: !relax.tensor<[16, 4], f32>, %bd: !relax.tensor<[4], f32>) -> tuple<!relax.tensor<[n, 8, h, h], f32>, !relax.tensor<[n, 8, (h - 3) floordiv 2 + 1, (h - 3) floordiv 2 + 1], f32>, !relax.tensor<[n, 4], f32>> {
    %0 = relax.conv2d %x, %w {padding = array<i64: 1, 1>} : (!relax.tensor<[n, 3, h, h], f32>, !relax.tensor<[8, 3, 3, 3], f32>) -> !relax.tensor<[n, 8, h, h], f32>
    %1 = relax.add %0, %b : (!relax.tensor<[n, 8, h, h], f32>, !relax.tensor<[1, 8, 1, 1], f32>) -> !relax.tensor<[n, 8, h, h], f32>
    %2 = relax.relu %1 : (!relax.tensor<[n, 8, h, h], f32>) -> !relax.tensor<[n, 8, h, h], f32>
    %3 = relax.conv2d %x, %w {strides = array<i64: 2, 2>} : (!relax.tensor<[n, 3, h, h], f32>, !relax.tensor<[8, 3, 3, 3], f32>) -> !relax.tensor<[n, 8, (h - 3) floordiv 2 + 1, (h - 3) floordiv 2 + 1], f32>
    %4 = relax.add %c, %3 : (!relax.tensor<[8, 1, 1], f32>, !relax.tensor<[n, 8, (h - 3) floordiv 2 + 1, (h - 3) floordiv 2 + 1], f32>) -> !relax.tensor<[n, 8, (h - 3) floordiv 2 + 1, (h - 3) floordiv 2 + 1], f32>
    %5 = relax.matmul %xd, %wd : (!relax.tensor<[n, 16], f32>, !relax.tensor<[16, 4], f32>) -> !relax.tensor<[n, 4], f32>
    %6 = relax.add %5, %bd : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4], f32>) -> !relax.tensor<[n, 4], f32>
    %7 = relax.gelu %6 : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    %8 = relax.tuple %2, %4, %7 : (!relax.tensor<[n, 8, h, h], f32>, !relax.tensor<[n, 8, (h - 3) floordiv 2 + 1, (h - 3) floordiv 2 + 1], f32>, !relax.tensor<[n, 4], f32>)
    relax.return %8 : tuple<!relax.tensor<[n, 8, h, h], f32>, !relax.tensor<[n, 8, (h - 3) floordiv 2 + 1, (h - 3) floordiv 2 + 1], f32>, !relax.tensor<[n, 4], f32>>
  }
}


// CHECK:      %0 = lib.call @blas_conv2d_1_1_1_1_1_1_bias4_relu(%x, %w, %b)
// CHECK-NEXT: %1 = lib.call @blas_conv2d_2_2_0_0_0_0_bias3(%x, %w, %c)
// CHECK-NEXT: %2 = lib.call @blas_dense_2x2_gelu(%xd, %wd, %bd)
// CHECK-NEXT: %3 = relax.tuple %0, %1, %2
// CHECK-DAG:  lib.func @blas_conv2d_1_1_1_1_1_1_bias4_relu (!tir.buffer<[n, c, h, w], f32>, !tir.buffer<[o, c, kh, kw], f32>, !tir.buffer<[1, o, 1, 1], f32>, !tir.buffer<[n, o, oh, ow], f32>) -> () {symbol = "rx_blas_conv2d_1_1_1_1_1_1_bias4_relu"
// CHECK-DAG:  lib.func @blas_conv2d_2_2_0_0_0_0_bias3 (!tir.buffer<[n, c, h, w], f32>, !tir.buffer<[o, c, kh, kw], f32>, !tir.buffer<[o, 1, 1], f32>, !tir.buffer<[n, o, oh, ow], f32>) -> () {symbol = "rx_blas_conv2d_2_2_0_0_0_0_bias3"
// CHECK-DAG:  lib.func @blas_dense_2x2_gelu (!tir.buffer<[m, k], f32>, !tir.buffer<[k, n], f32>, !tir.buffer<[n], f32>, !tir.buffer<[m, n], f32>) -> () {symbol = "rx_blas_dense_2x2_gelu"
// CHECK-NOT:  relax.conv2d
