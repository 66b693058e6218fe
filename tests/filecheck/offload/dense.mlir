// RUN: relax-xdsl-opt %s -p "offload{lib=blas}" | filecheck %s

// A dense layer -- matmul by a matrix, + a bias row, + relu -- is one
// library call (bias as the GEMM's C operand); without the relu, the
// matmul + bias pattern; a bias of the wrong shape leaves the add alone.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 8], f32>, %w: !relax.tensor<[8, 4], f32>, %b: !relax.tensor<[4], f32>, %c: !relax.tensor<[n, 4], f32>) -> (!relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>) {
    %0 = relax.matmul %x, %w : (!relax.tensor<[n, 8], f32>, !relax.tensor<[8, 4], f32>) -> !relax.tensor<[n, 4], f32>
    %1 = relax.add %0, %b : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4], f32>) -> !relax.tensor<[n, 4], f32>
    %2 = relax.relu %1 : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    %3 = relax.matmul %x, %w : (!relax.tensor<[n, 8], f32>, !relax.tensor<[8, 4], f32>) -> !relax.tensor<[n, 4], f32>
    %4 = relax.add %b, %3 : (!relax.tensor<[4], f32>, !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    %5 = relax.matmul %x, %w : (!relax.tensor<[n, 8], f32>, !relax.tensor<[8, 4], f32>) -> !relax.tensor<[n, 4], f32>
    %6 = relax.add %5, %c : (!relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    relax.return %2, %4, %6 : !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>
  }
}

// CHECK:      %0 = lib.call @blas_dense_2x2_relu(%x, %w, %b) : (!relax.tensor<[n, 8], f32>, !relax.tensor<[8, 4], f32>, !relax.tensor<[4], f32>) -> !relax.tensor<[n, 4], f32>
// CHECK-NEXT: %1 = lib.call @blas_dense_2x2(%x, %w, %b)
// CHECK-NEXT: %2 = lib.call @blas_matmul_2x2(%x, %w)
// CHECK-NEXT: %3 = relax.add %2, %c
// CHECK-NEXT: relax.return %0, %1, %3
// CHECK:      lib.func @blas_dense_2x2_relu (!tir.buffer<[m, k], f32>, !tir.buffer<[k, n], f32>, !tir.buffer<[n], f32>, !tir.buffer<[m, n], f32>) -> () {symbol = "rx_blas_dense_2x2_relu", library = "blas", header = "cblas.h"
