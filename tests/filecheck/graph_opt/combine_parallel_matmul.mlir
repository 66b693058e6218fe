// RUN: relax-xdsl-opt %s -p combine-parallel-matmul | filecheck %s

// q, k and v projections of one operand, each with a bias row, become one
// matmul by the joined [4, 7] weights, one add of the joined bias, and a
// column slice per projection; a matmul of another operand stays.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %z: !relax.tensor<[n, 4], f32>) -> tuple<!relax.tensor<[n, 2], f32>, !relax.tensor<[n, 2], f32>, !relax.tensor<[n, 3], f32>, !relax.tensor<[n, 2], f32>> {
    %wq = relax.constant dense<1.0> : tensor<4x2xf32>
    %wk = relax.constant dense<2.0> : tensor<4x2xf32>
    %wv = relax.constant dense<3.0> : tensor<4x3xf32>
    %bq = relax.constant dense<0.5> : tensor<2xf32>
    %bk = relax.constant dense<0.25> : tensor<2xf32>
    %bv = relax.constant dense<0.125> : tensor<3xf32>
    %q0 = relax.matmul %x, %wq : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, 2], f32>) -> !relax.tensor<[n, 2], f32>
    %q = relax.add %q0, %bq : (!relax.tensor<[n, 2], f32>, !relax.tensor<[2], f32>) -> !relax.tensor<[n, 2], f32>
    %k0 = relax.matmul %x, %wk : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, 2], f32>) -> !relax.tensor<[n, 2], f32>
    %k = relax.add %k0, %bk : (!relax.tensor<[n, 2], f32>, !relax.tensor<[2], f32>) -> !relax.tensor<[n, 2], f32>
    %v0 = relax.matmul %x, %wv : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, 3], f32>) -> !relax.tensor<[n, 3], f32>
    %v = relax.add %v0, %bv : (!relax.tensor<[n, 3], f32>, !relax.tensor<[3], f32>) -> !relax.tensor<[n, 3], f32>
    %o = relax.matmul %z, %wq : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, 2], f32>) -> !relax.tensor<[n, 2], f32>
    %t = relax.tuple %q, %k, %v, %o : (!relax.tensor<[n, 2], f32>, !relax.tensor<[n, 2], f32>, !relax.tensor<[n, 3], f32>, !relax.tensor<[n, 2], f32>)
    relax.return %t : tuple<!relax.tensor<[n, 2], f32>, !relax.tensor<[n, 2], f32>, !relax.tensor<[n, 3], f32>, !relax.tensor<[n, 2], f32>>
  }
}

// CHECK:      %[[W:.*]] = relax.constant dense<{{.*}}> : tensor<4x7xf32>
// CHECK-NEXT: %[[Y:.*]] = relax.matmul %x, %[[W]] : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, 7], f32>) -> !relax.tensor<[n, 7], f32>
// CHECK-NEXT: %[[B:.*]] = relax.constant dense<[5.000000e-01, 5.000000e-01, 2.500000e-01, 2.500000e-01, 1.250000e-01, 1.250000e-01, 1.250000e-01]> : tensor<7xf32>
// CHECK-NEXT: %[[S:.*]] = relax.add %[[Y]], %[[B]]
// CHECK-NEXT: %[[Q:.*]] = relax.strided_slice %[[S]] {axes = array<i64: -1>, begin = #relax.dims<[0]>, end = #relax.dims<[2]>}
// CHECK-NEXT: %[[K:.*]] = relax.strided_slice %[[S]] {axes = array<i64: -1>, begin = #relax.dims<[2]>, end = #relax.dims<[4]>}
// CHECK-NEXT: %[[V:.*]] = relax.strided_slice %[[S]] {axes = array<i64: -1>, begin = #relax.dims<[4]>, end = #relax.dims<[7]>}
// CHECK:      relax.matmul %z
// CHECK-NEXT: relax.tuple %[[Q]], %[[K]], %[[V]]
