// RUN: relax-xdsl-opt %s -p "offload{lib=blas}" | filecheck %s
// RUN: relax-xdsl-opt %s -p "offload{lib=blas},legalize" | filecheck %s --check-prefix=REST

builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %w: !relax.tensor<[4, m], f32>, %b: !relax.tensor<[b, n, 4], f32>, %i: !relax.tensor<[n, 4], i32>, %j: !relax.tensor<[4, 2], i32>, %img: !relax.tensor<[n, 3, 8, 8], f32>, %k: !relax.tensor<[5, 3, 3, 3], f32>) -> (!relax.tensor<[n, m], f32>, !relax.tensor<[b, n, m], f32>, !relax.tensor<[n, 2], i32>, !relax.tensor<[n, 5, 8, 8], f32>) {
    %0 = relax.matmul %x, %w : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, m], f32>
    %1 = relax.matmul %b, %w : (!relax.tensor<[b, n, 4], f32>, !relax.tensor<[4, m], f32>) -> !relax.tensor<[b, n, m], f32>
    %2 = relax.matmul %i, %j : (!relax.tensor<[n, 4], i32>, !relax.tensor<[4, 2], i32>) -> !relax.tensor<[n, 2], i32>
    %3 = relax.conv2d %img, %k {padding = array<i64: 1>} : (!relax.tensor<[n, 3, 8, 8], f32>, !relax.tensor<[5, 3, 3, 3], f32>) -> !relax.tensor<[n, 5, 8, 8], f32>
    relax.return %0, %1, %2, %3 : !relax.tensor<[n, m], f32>, !relax.tensor<[b, n, m], f32>, !relax.tensor<[n, 2], i32>, !relax.tensor<[n, 5, 8, 8], f32>
  }
}

// float32 matmuls (2x2, batched 3x2) and the conv2d become library calls; the int32 matmul stays.
// CHECK:      %0 = lib.call @blas_matmul_2x2(%x, %w)
// CHECK-NEXT: %1 = lib.call @blas_matmul_3x2(%b, %w)
// CHECK-NEXT: %2 = relax.matmul %i, %j
// CHECK-NEXT: %3 = lib.call @blas_conv2d_1_1_1_1_1_1(%img, %k)
// CHECK:      lib.func @blas_matmul_2x2 (!tir.buffer<[m, k], f32>, !tir.buffer<[k, n], f32>, !tir.buffer<[m, n], f32>) -> () {symbol = "rx_blas_matmul_2x2", library = "blas", header = "cblas.h"
// CHECK:      lib.func @blas_matmul_3x2
// CHECK:      lib.func @blas_conv2d_1_1_1_1_1_1 {{.*}} reference = "blas.conv2d:1,1,1,1,1,1"

// What is left is legalized as usual, beside the library calls.
// REST:      lib.call @blas_matmul_2x2
// REST:      relax.call_tir @matmul(%i, %j)
// REST:      tir.prim_func @matmul
