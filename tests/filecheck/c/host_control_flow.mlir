// RUN: relax-xdsl-opt %s -t c | filecheck %s

// Host control flow over buffers: an scf.if yielding a memref (a variable for
// its pointer and its dynamic dim, and an rx_owned slot), a call returning a
// memref through pointers to locals, a recursive call counted in rx_depth.
builtin.module {
  func.func @main(%x: memref<?x4xf32>, %k: index) -> memref<?x4xf32> {
    %c0 = arith.constant 0 : index
    %n = memref.dim %x, %c0 : memref<?x4xf32>
    %pos = arith.cmpi sgt, %k, %c0 : index
    %r = scf.if %pos -> (memref<?x4xf32>) {
      %a = memref.alloc(%n) {alignment = 64 : i64} : memref<?x4xf32>
      "memref.copy"(%x, %a) : (memref<?x4xf32>, memref<?x4xf32>) -> ()
      scf.yield %a : memref<?x4xf32>
    } else {
      %y = func.call @down(%x, %k) : (memref<?x4xf32>, index) -> memref<?x4xf32>
      scf.yield %y : memref<?x4xf32>
    }
    func.return %r : memref<?x4xf32>
  }
  func.func @down(%x: memref<?x4xf32>, %k: index) -> memref<?x4xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = memref.dim %x, %c0 : memref<?x4xf32>
    %stop = arith.cmpi sge, %k, %c0 : index
    %r = scf.if %stop -> (memref<?x4xf32>) {
      %a = memref.alloc(%n) {alignment = 64 : i64} : memref<?x4xf32>
      "memref.copy"(%x, %a) : (memref<?x4xf32>, memref<?x4xf32>) -> ()
      scf.yield %a : memref<?x4xf32>
    } else {
      %k1 = arith.addi %k, %c1 : index
      %y = func.call @down(%x, %k1) : (memref<?x4xf32>, index) -> memref<?x4xf32>
      scf.yield %y : memref<?x4xf32>
    }
    func.return %r : memref<?x4xf32>
  }
}

// Every function's prototype comes first (any definition order, recursion).
// CHECK: int rxf_main(const void* const* rx_g, float* restrict a0, int64_t a0_d0, int64_t a1, void** r0, int64_t* r0_dims);
// CHECK-NEXT: int rxf_down(const void* const* rx_g, float* restrict a0, int64_t a0_d0, int64_t a1, void** r0, int64_t* r0_dims);
// CHECK: int rxf_main(
// CHECK-NEXT: void* rx_owned[3] = {0};
// The if's result: a pointer, its dynamic dim, a slot that owns the buffer or is NULL.
// CHECK: float* [[R:v[0-9]+_r]] = NULL;
// CHECK-NEXT: int64_t [[D:v[0-9]+_dim]] = 0;
// CHECK-NEXT: rx_owned[[[RS:[0-9]+]]] = NULL;
// CHECK-NEXT: if (
// CHECK: rx_owned[[[AS:[0-9]+]]] = [[A:v[0-9]+_a]];
// CHECK: [[R]] = [[A]];
// CHECK-NEXT: [[D]] = v{{[0-9]+}}_n;
// CHECK-NEXT: rx_owned[[[RS]]] = rx_owned[[[AS]]];
// CHECK-NEXT: } else {
// A call with results, not recursive: no depth count; the result buffer is owned once the call succeeds.
// CHECK-NEXT: void* [[RET:v[0-9]+_ret]] = NULL; int64_t [[DIMS:v[0-9]+_ret__dims]][2];
// CHECK-NEXT: if (rxf_down(rx_g, a0, a0_d0, a1, &[[RET]], [[DIMS]])) goto rx_cleanup;
// CHECK-NEXT: float* [[Y:v[0-9]+_y]] = (float*)[[RET]];
// CHECK-NEXT: rx_owned[[[YS:[0-9]+]]] = [[RET]];
// CHECK-NEXT: [[R]] = [[Y]];
// CHECK-NEXT: [[D]] = [[DIMS]][0];
// CHECK-NEXT: rx_owned[[[RS]]] = rx_owned[[[YS]]];
// CHECK: *r0 = (void*)[[R]];
// CHECK-NEXT: r0_dims[0] = [[D]];
// CHECK: rx_cleanup:
// CHECK-NEXT: rx_free_owned(rx_owned, 3);
// CHECK-NEXT: return 1;
// The recursive call counts its depth.
// CHECK: int rxf_down(
// CHECK: if (rx_depth >= rx_max_depth) { rx_fail_depth("@down: call of @down"); goto rx_cleanup; }
// CHECK-NEXT: ++rx_depth; int [[S:v[0-9]+_status]] = rxf_down(rx_g, a0, a0_d0, v{{[0-9]+}}_k1, &{{v[0-9]+_ret}}, {{v[0-9]+_ret__dims}}); --rx_depth;
// CHECK-NEXT: if ([[S]]) goto rx_cleanup;
