// RUN: relax-xdsl-opt %s -p legalize,auto-schedule | filecheck %s
// RUN: relax-xdsl-opt %s -p default -t c | filecheck %s --check-prefix=C

// matmul: the output row axis in parallel, k, then the contiguous column axis
// innermost (vectorized); the sum over rows keeps k outermost; row sums
// (contiguous along the reduction axis, as softmax's, whose per-row max is
// contiguous along the output axis) are left to lower-tir.
builtin.module {
  relax.function @main(%a: !relax.tensor<[n, k], f32>, %b: !relax.tensor<[k, m], f32>) -> tuple<!relax.tensor<[n, m], f32>, !relax.tensor<[m], f32>, !relax.tensor<[k], f32>, !relax.tensor<[k, m], f32>> {
    %0 = relax.matmul %a, %b : (!relax.tensor<[n, k], f32>, !relax.tensor<[k, m], f32>) -> !relax.tensor<[n, m], f32>
    %1 = relax.sum %b {axis = array<i64: 0>} : (!relax.tensor<[k, m], f32>) -> !relax.tensor<[m], f32>
    %2 = relax.sum %b {axis = array<i64: 1>} : (!relax.tensor<[k, m], f32>) -> !relax.tensor<[k], f32>
    %3 = relax.softmax %b : (!relax.tensor<[k, m], f32>) -> !relax.tensor<[k, m], f32>
    %4 = relax.tuple %0, %1, %2, %3 : (!relax.tensor<[n, m], f32>, !relax.tensor<[m], f32>, !relax.tensor<[k], f32>, !relax.tensor<[k, m], f32>)
    relax.return %4 : tuple<!relax.tensor<[n, m], f32>, !relax.tensor<[m], f32>, !relax.tensor<[k], f32>, !relax.tensor<[k, m], f32>>
  }
}


// CHECK:      tir.prim_func @matmul(
// CHECK:        tir.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:            tir.store %{{.*}}, %out[%[[I]], %{{.*}}]
// CHECK:        tir.for %[[I2:.*]] = %{{.*}} to %{{.*}} step %{{.*}} parallel {
// CHECK-NEXT:     tir.for %[[K:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:       tir.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} vectorize {
// CHECK-NEXT:         tir.load %x1[%[[I2]], %[[K]]]
// CHECK-NEXT:         tir.load %x2[%[[K]], %[[J]]]
// CHECK:              tir.store %{{.*}}, %out[%[[I2]], %[[J]]]
// CHECK:      tir.prim_func @sum(
// CHECK-NOT:    parallel
// CHECK:        tir.store %{{.*}}, %out[
// CHECK-NOT:    parallel
// CHECK:        tir.for %[[K3:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:     tir.for %[[J3:.*]] = %{{.*}} to %{{.*}} step %{{.*}} vectorize {
// CHECK-NEXT:       tir.load %x[%[[K3]], %[[J3]]]
// CHECK:      tir.prim_func @sum_1(
// CHECK-NEXT:   tir.compute %out
// CHECK:      tir.prim_func @softmax(
// CHECK-NOT:    tir.for
// CHECK:        tir.compute %{{.*}} reduce max
// CHECK-NOT:    tir.for
// CHECK:        tir.compute %{{.*}} reduce add
// CHECK-NOT:    tir.for
// CHECK:        tir.compute %out

// C:      int rxf_matmul(
// C:        #pragma omp parallel for
// C:        #pragma omp simd
// C-NEXT:   for (int64_t
