// RUN: relax-xdsl-opt %s -p "offload{lib=blas gemm=blas}" | filecheck %s

// q @ K^T where K^T swaps the key cache's last two axes: one GEMM reading
// the cache as stored (BLAS's transpose flag), the permute_dims gone. A
// permutation of other axes is a real copy and stays.
builtin.module {
  relax.function @main(%q: !relax.tensor<[b, 8, s, 32], f32>, %k: !relax.tensor<[b, 8, n, 32], f32>, %v: !relax.tensor<[8, b, 32, n], f32>) -> (!relax.tensor<[b, 8, s, n], f32>, !relax.tensor<[b, 8, s, n], f32>) {
    %kt = relax.permute_dims %k {axes = array<i64: 0, 1, 3, 2>} : (!relax.tensor<[b, 8, n, 32], f32>) -> !relax.tensor<[b, 8, 32, n], f32>
    %0 = relax.matmul %q, %kt : (!relax.tensor<[b, 8, s, 32], f32>, !relax.tensor<[b, 8, 32, n], f32>) -> !relax.tensor<[b, 8, s, n], f32>
    %vt = relax.permute_dims %v {axes = array<i64: 1, 0, 2, 3>} : (!relax.tensor<[8, b, 32, n], f32>) -> !relax.tensor<[b, 8, 32, n], f32>
    %1 = relax.matmul %q, %vt : (!relax.tensor<[b, 8, s, 32], f32>, !relax.tensor<[b, 8, 32, n], f32>) -> !relax.tensor<[b, 8, s, n], f32>
    relax.return %0, %1 : !relax.tensor<[b, 8, s, n], f32>, !relax.tensor<[b, 8, s, n], f32>
  }
}

// CHECK:      %0 = lib.call @blas_matmul_4x4_tb(%q, %k) : (!relax.tensor<[b, 8, s, 32], f32>, !relax.tensor<[b, 8, n, 32], f32>) -> !relax.tensor<[b, 8, s, n], f32>
// CHECK-NEXT: %vt = relax.permute_dims %v {axes = array<i64: 1, 0, 2, 3>}
// CHECK-NEXT: %1 = lib.call @blas_matmul_4x4(%q, %vt)
// CHECK-NEXT: relax.return %0, %1
// CHECK:      lib.func @blas_matmul_4x4_tb (!tir.buffer<[b0, b1, m, k], f32>, !tir.buffer<[b0, b1, n, k], f32>, !tir.buffer<[b0, b1, m, n], f32>) -> () {symbol = "rx_blas_matmul_4x4_tb", library = "blas"
