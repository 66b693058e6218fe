// RUN: relax-xdsl-opt %s -p "offload{lib=blas gemm=packed}" | filecheck %s

// A dense layer on a model-constant matrix, under the `packed` GEMM route:
// one library call reading a new constant, the weights packed when
// compiling. W is 2 x 18 here: one panel of 16 columns (its rows 0 and 1,
// 16 floats each), then the last 2 columns row by row (16, 17, then 34,
// 35). The shape stays W's. A matmul by the same W without an epilogue
// reads the same packed copy; W itself stays for the add that reads it.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 2], f32>) -> (!relax.tensor<[n, 18], f32>, !relax.tensor<[n, 18], f32>, !relax.tensor<[2, 18], f32>) {
    %w = relax.constant dense<[[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0], [18.0, 19.0, 20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0, 28.0, 29.0, 30.0, 31.0, 32.0, 33.0, 34.0, 35.0]]> : tensor<2x18xf32>
    %b = relax.constant dense<1.0> : tensor<18xf32>
    %0 = relax.matmul %x, %w : (!relax.tensor<[n, 2], f32>, !relax.tensor<[2, 18], f32>) -> !relax.tensor<[n, 18], f32>
    %1 = relax.add %0, %b : (!relax.tensor<[n, 18], f32>, !relax.tensor<[18], f32>) -> !relax.tensor<[n, 18], f32>
    %2 = relax.relu %1 : (!relax.tensor<[n, 18], f32>) -> !relax.tensor<[n, 18], f32>
    %3 = relax.matmul %x, %w : (!relax.tensor<[n, 2], f32>, !relax.tensor<[2, 18], f32>) -> !relax.tensor<[n, 18], f32>
    %4 = relax.add %w, %w : (!relax.tensor<[2, 18], f32>, !relax.tensor<[2, 18], f32>) -> !relax.tensor<[2, 18], f32>
    relax.return %2, %3, %4 : !relax.tensor<[n, 18], f32>, !relax.tensor<[n, 18], f32>, !relax.tensor<[2, 18], f32>
  }
}

// CHECK:      %w = relax.constant dense<{{\[\[}}0.000000e+00, 1.000000e+00, {{.*}} 1.700000e+01], [1.800000e+01, {{.*}}]]> : tensor<2x18xf32>
// CHECK-NEXT: %w_packed = relax.constant dense<{{\[\[}}0.000000e+00, {{.*}}, 1.500000e+01, 1.800000e+01, 1.900000e+01], [2.000000e+01, {{.*}}, 3.300000e+01, 1.600000e+01, 1.700000e+01, 3.400000e+01, 3.500000e+01]]> : tensor<2x18xf32>
// CHECK:      %{{.*}} = lib.call @blas_packed_dense_2x2_bias_relu(%x, %w_packed, %b) : (!relax.tensor<[n, 2], f32>, !relax.tensor<[2, 18], f32>, !relax.tensor<[18], f32>) -> !relax.tensor<[n, 18], f32>
// CHECK-NEXT: %{{.*}} = lib.call @blas_packed_dense_2x2(%x, %w_packed) : (!relax.tensor<[n, 2], f32>, !relax.tensor<[2, 18], f32>) -> !relax.tensor<[n, 18], f32>
// CHECK-NEXT: %{{.*}} = relax.add %w, %w
// CHECK:      lib.func @blas_packed_dense_2x2_bias_relu (!tir.buffer<[m, k], f32>, !tir.buffer<[k, n], f32>, !tir.buffer<[n], f32>, !tir.buffer<[m, n], f32>) -> () {symbol = "rx_blas_packed_dense_2x2_bias_relu", library = "blas", header = "rx_blas.h", reference = "blas.packed_dense_2x2_bias_relu", pure}
// CHECK:      lib.func @blas_packed_dense_2x2 (!tir.buffer<[m, k], f32>, !tir.buffer<[k, n], f32>, !tir.buffer<[m, n], f32>) -> () {symbol = "rx_blas_packed_dense_2x2"
