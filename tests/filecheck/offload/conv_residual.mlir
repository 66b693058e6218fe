// RUN: relax-xdsl-opt %s -p "offload{lib=blas conv=dnnl}" | filecheck %s

// conv2d (channels last) + a per-channel bias + a residual of the result's
// type, on either side of the add, + relu is one oneDNN call: the residual
// is the operand after the bias (read by oneDNN's binary post-op), of the
// output's shape. Without the relu, or with a residual that broadcasts (no
// such operand), the add stays.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, h, h, 8], f32>, %w: !relax.tensor<[8, 8, 3, 3], f32>, %b: !relax.tensor<[1, 1, 1, 8], f32>, %r: !relax.tensor<[n, h, h, 8], f32>, %s: !relax.tensor<[1, h, h, 8], f32>) -> tuple<!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[n, h, h, 8], f32>> {
    %0 = relax.conv2d %x, %w {padding = array<i64: 1, 1>, data_layout = "NHWC"} : (!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[8, 8, 3, 3], f32>) -> !relax.tensor<[n, h, h, 8], f32>
    %1 = relax.add %0, %b : (!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[1, 1, 1, 8], f32>) -> !relax.tensor<[n, h, h, 8], f32>
    %2 = relax.add %r, %1 : (!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[n, h, h, 8], f32>) -> !relax.tensor<[n, h, h, 8], f32>
    %3 = relax.relu %2 : (!relax.tensor<[n, h, h, 8], f32>) -> !relax.tensor<[n, h, h, 8], f32>
    %4 = relax.conv2d %3, %w {padding = array<i64: 1, 1>, data_layout = "NHWC"} : (!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[8, 8, 3, 3], f32>) -> !relax.tensor<[n, h, h, 8], f32>
    %5 = relax.add %4, %b : (!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[1, 1, 1, 8], f32>) -> !relax.tensor<[n, h, h, 8], f32>
    %6 = relax.add %5, %3 : (!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[n, h, h, 8], f32>) -> !relax.tensor<[n, h, h, 8], f32>
    %7 = relax.conv2d %6, %w {padding = array<i64: 1, 1>, data_layout = "NHWC"} : (!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[8, 8, 3, 3], f32>) -> !relax.tensor<[n, h, h, 8], f32>
    %8 = relax.add %7, %b : (!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[1, 1, 1, 8], f32>) -> !relax.tensor<[n, h, h, 8], f32>
    %9 = relax.add %8, %s : (!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[1, h, h, 8], f32>) -> !relax.tensor<[n, h, h, 8], f32>
    %10 = relax.tuple %3, %6, %9 : (!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[n, h, h, 8], f32>)
    relax.return %10 : tuple<!relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[n, h, h, 8], f32>, !relax.tensor<[n, h, h, 8], f32>>
  }
}

// CHECK:      %0 = lib.call @dnnl_conv2d_nhwc_1_1_1_1_1_1_1_1_1_bias4_add_relu(%x, %w, %b, %r)
// CHECK-NEXT: %1 = lib.call @dnnl_conv2d_nhwc_1_1_1_1_1_1_1_1_1_bias4(%0, %w, %b)
// CHECK-NEXT: %2 = relax.add %1, %0
// CHECK-NEXT: %3 = lib.call @dnnl_conv2d_nhwc_1_1_1_1_1_1_1_1_1_bias4(%2, %w, %b)
// CHECK-NEXT: %4 = relax.add %3, %s
// CHECK-NEXT: %5 = relax.tuple %0, %2, %4
// CHECK-DAG:  lib.func @dnnl_conv2d_nhwc_1_1_1_1_1_1_1_1_1_bias4_add_relu (!tir.buffer<[n, h, w, c], f32>, !tir.buffer<[o, ci, kh, kw], f32>, !tir.buffer<[1, 1, 1, o], f32>, !tir.buffer<[n, oh, ow, o], f32>, !tir.buffer<[n, oh, ow, o], f32>) -> () {symbol = "rx_dnnl_conv2d_nhwc_1_1_1_1_1_1_1_1_1_bias4_add_relu", library = "dnnl"
