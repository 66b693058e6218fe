// RUN: relax-xdsl-opt %s -p baseline -t c | filecheck %s

builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32> {
    %0 = relax.softmax %x : (!relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32>
    relax.return %0 : !relax.tensor<[n, 8], f32>
  }
}

// The runtime (errors, allocation, helpers) is a header and a linked archive, not part of the source.
// CHECK: #include "rx_runtime.h"
// CHECK-NOT: rx_last_error
// CHECK: int rxf_main(const void* const* rx_g, float* restrict a0, int64_t a0_d0, void** r0, int64_t* r0_dims) {
// CHECK:   rx_alloc(
// CHECK:   rx_owned[0] = [[BUF:.*]];
// CHECK:   if (rxf_softmax(rx_g, a0, a0_d0, {{.*}})) goto rx_cleanup;
// CHECK:   *r0 = (void*)
// CHECK:   return 0;
// A failed call frees what the host function allocated.
// CHECK: rx_cleanup:
// CHECK-NEXT: for (int k = 0; k < 1; ++k) free(rx_owned[k]);
// CHECK-NEXT: return 1;
// CHECK: int rxf_softmax(
// CHECK:   if (!({{.*}})) { rx_fail("tensor program softmax: buffer out dim 0 is not n"); goto rx_cleanup; }
// CHECK:   rx_expf(
// CHECK:   free(
