// RUN: relax-xdsl-opt %s -p baseline -t c | filecheck %s

// A small parallel nest (the add) is emitted twice: plain loops taken below
// PARALLEL_MIN_WORK iterations (an OpenMP region kept on one thread by an `if`
// clause still costs about 0.45 us), the OpenMP loop above. A large one (the
// matmul's register tiles) keeps one copy with the `if` clause.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 64], f32>, %w: !relax.tensor<[64, 64], f32>) -> !relax.tensor<[n, 64], f32> {
    %0 = relax.add %x, %x : (!relax.tensor<[n, 64], f32>, !relax.tensor<[n, 64], f32>) -> !relax.tensor<[n, 64], f32>
    %1 = relax.matmul %0, %w : (!relax.tensor<[n, 64], f32>, !relax.tensor<[64, 64], f32>) -> !relax.tensor<[n, 64], f32>
    relax.return %1 : !relax.tensor<[n, 64], f32>
  }
}

// CHECK:      int rxf_add(
// CHECK:        if (((v1 - ((int64_t)0LL)) * ((((int64_t)64LL) - ((int64_t)0LL)) * 1)) < 32768) {
// CHECK-NEXT:     for (int64_t [[P:v[0-9]+_p]] = ((int64_t)0LL); [[P]] < v1;
// CHECK-NEXT:       #pragma omp simd
// CHECK-NEXT:       for (int64_t [[I:v[0-9]+_i]] =
// CHECK-NEXT:         float {{.*}} = a0[([[P]]) * 64 + [[I]]];
// CHECK:        } else {
// CHECK-NEXT:     #pragma omp parallel for schedule(static)
// CHECK-NEXT:     for (int64_t [[P2:v[0-9]+_p]] = ((int64_t)0LL); [[P2]] < v1;
// CHECK-NEXT:       float* restrict [[A0:v[0-9]+_p]] = a0;
// CHECK:              float {{.*}} = [[A0]][([[P2]]) * 64 +
// CHECK:        return 0;
// CHECK:      int rxf_matmul(
// CHECK-NOT:    } else {
// CHECK:        #pragma omp parallel for schedule(static) if(
// CHECK-NOT:    #pragma omp parallel
// CHECK:        return 0;
