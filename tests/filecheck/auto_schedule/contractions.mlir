// RUN: relax-xdsl-opt %s -p legalize,auto-schedule | filecheck %s
// RUN: relax-xdsl-opt %s -p baseline -t c | filecheck %s --check-prefix=C

// matmul: register tiles (below); the sum over rows keeps k outermost; row sums
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


// matmul: register tiles of 4 rows x 64 columns (column panels one after
// another, none without a whole row tile; each panel's row blocks in
// parallel), the partial sums in a local 4x64 buffer over all of k (the row
// loop unrolled, the column loop vectorized), written once; then the
// leftover columns of the tiled rows and the leftover rows, each row in
// the plain order (k, then the columns vectorized) accumulating in %out.
// CHECK:      tir.prim_func @matmul(
// CHECK-DAG:    %[[ROWS:.*]] = arith.constant 4 : index
// CHECK-DAG:    %[[COLS:.*]] = arith.constant 64 : index
// CHECK:        %[[TM:.*]] = arith.floordivsi %{{.*}}, %[[ROWS]] : index
// CHECK:        %[[TN:.*]] = arith.floordivsi %{{.*}}, %[[COLS]] : index
// CHECK:        %[[MT:.*]] = arith.muli %[[TM]], %[[ROWS]] : index
// CHECK:        %[[NT:.*]] = arith.muli %[[TN]], %[[COLS]] : index
// CHECK:        %[[ANY:.*]] = arith.minsi %[[TM]], %{{.*}} : index
// CHECK:        %[[PANELS:.*]] = arith.muli %[[TN]], %[[ANY]] : index
// CHECK:        tir.for %[[JO:.*]] = %{{.*}} to %[[PANELS]] step %{{[0-9]+}} {
// CHECK-NEXT:     tir.for %[[IO:.*]] = %{{.*}} to %[[TM]] step %{{.*}} parallel {
// CHECK-NEXT:       %[[ACC:.*]] = tir.alloc : !tir.buffer<[4, 64], f32>
// CHECK:            tir.store %{{.*}}, %[[ACC]][
// CHECK:            tir.for %[[K:.*]] = %{{.*}} to %{{.*}} step %{{[0-9]+}} {
// CHECK-NEXT:         tir.for %[[II:.*]] = %{{.*}} to %[[ROWS]] step %{{.*}} unroll {
// CHECK-NEXT:           tir.for %[[JI:.*]] = %{{.*}} to %[[COLS]] step %{{.*}} vectorize {
// CHECK-NOT:              %out
// CHECK:                  tir.load %x1[%{{.*}}, %[[K]]]
// CHECK-NEXT:             tir.load %x2[%[[K]], %{{.*}}]
// CHECK-NOT:              %out
// CHECK:                  tir.store %{{.*}}, %[[ACC]][%[[II]], %[[JI]]]
// CHECK:            tir.load %[[ACC]]
// CHECK-NEXT:       tir.store %{{.*}}, %out[
// CHECK:        tir.for %[[I2:.*]] = %{{.*}} to %[[MT]] step %{{.*}} parallel {
// CHECK:          tir.for %[[K2:.*]] = %{{.*}} to %{{.*}} step %{{[0-9]+}} {
// CHECK-NEXT:       tir.for %[[J2:.*]] = %[[NT]] to %{{.*}} step %{{.*}} vectorize {
// CHECK:              tir.store %{{.*}}, %out[%[[I2]], %[[J2]]]
// CHECK:        tir.for %[[I3:.*]] = %[[MT]] to %{{.*}} step %{{.*}} {
// CHECK:          tir.for %[[K3:.*]] = %{{.*}} to %{{.*}} step %{{[0-9]+}} {
// CHECK-NEXT:       tir.for %[[J3:.*]] = %{{.*}} to %{{.*}} step %{{.*}} vectorize {
// CHECK:              tir.store %{{.*}}, %out[%[[I3]], %[[J3]]]
// CHECK:      tir.prim_func @sum(
// CHECK-NOT:    parallel
// CHECK:        tir.store %{{.*}}, %out[
// CHECK-NOT:    parallel
// CHECK:        tir.for %[[K3:.*]] = %{{.*}} to %{{.*}} step %{{[0-9]+}} {
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
// C:        for (int64_t
// C-NEXT:     #pragma omp parallel for
// C:          float [[LOCAL:v[0-9]+_local]][4 * 64] __attribute__((aligned(64)));
// C:          #pragma GCC unroll 8
// C-NEXT:     for (int64_t
// C:            #pragma omp simd
// C-NEXT:       for (int64_t
// C:              [[LOCAL]][
