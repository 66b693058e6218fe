// RUN: relax-xdsl-opt %s | relax-xdsl-opt | filecheck %s
// RUN: relax-xdsl-opt %s -p legalize,lower-tir,lower-graph | filecheck %s --check-prefix=HOST

// relax.call_tir_inplace prints and parses back; lowered, the in-place
// output is the input's buffer: one alloc (the exp's result, returned), no
// copy, and the program gets that buffer.
builtin.module {
  tir.prim_func @add_one(%x: !tir.buffer<[n], f32>) {
    %0 = arith.constant 0 : index
    %1 = arith.constant 1 : index
    %2 = tir.sym n
    tir.for %3 = %0 to %2 step %1 {
      %4 = tir.load %x[%3] : !tir.buffer<[n], f32>
      %5 = arith.constant 1.000000e+00 : f32
      %6 = arith.addf %4, %5 : f32
      tir.store %6, %x[%3] : !tir.buffer<[n], f32>
    }
  }
  relax.function @main(%a: !relax.tensor<[n], f32>) -> !relax.tensor<[n], f32> {
    %0 = relax.exp %a : (!relax.tensor<[n], f32>) -> !relax.tensor<[n], f32>
    %1 = relax.call_tir_inplace @add_one(%0) {inplace_indices = array<i64: 0>} : (!relax.tensor<[n], f32>) -> !relax.tensor<[n], f32>
    relax.return %1 : !relax.tensor<[n], f32>
  }
}

// CHECK:      relax.function @main(%a: !relax.tensor<[n], f32>) -> !relax.tensor<[n], f32> {
// CHECK-NEXT:   %0 = relax.exp %a
// CHECK-NEXT:   %1 = relax.call_tir_inplace @add_one(%0) {inplace_indices = array<i64: 0>} : (!relax.tensor<[n], f32>) -> !relax.tensor<[n], f32>
// CHECK-NEXT:   relax.return %1

// HOST:      func.func @main(%a: memref<?xf32>) -> memref<?xf32> {
// HOST:        %[[OUT:.*]] = memref.alloc
// HOST-NOT:    memref.alloc
// HOST-NOT:    memref.copy
// HOST:        func.call @exp({{.*}}, %[[OUT]]{{.*}})
// HOST-NOT:    memref.alloc
// HOST-NOT:    memref.copy
// HOST:        func.call @add_one(%[[OUT]]{{.*}})
// HOST-NOT:    memref.copy
// HOST:        func.return %[[OUT]]
