// RUN: relax-xdsl-opt %s -p "legalize,lower-tir,lower-graph{plan-memory=false}" | filecheck %s

// Without memory planning each intermediate is freed right after its last
// use, not at the end.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n], f32>) -> !relax.tensor<[n], f32> {
    %0 = relax.exp %x : (!relax.tensor<[n], f32>) -> !relax.tensor<[n], f32>
    %1 = relax.exp %0 : (!relax.tensor<[n], f32>) -> !relax.tensor<[n], f32>
    %2 = relax.exp %1 : (!relax.tensor<[n], f32>) -> !relax.tensor<[n], f32>
    relax.return %2 : !relax.tensor<[n], f32>
  }
}

// CHECK:      %[[A:.*]] = memref.alloc
// CHECK:      func.call @exp(%x, %[[A]]
// CHECK:      %[[B:.*]] = memref.alloc
// CHECK:      func.call @exp(%[[A]], %[[B]]
// CHECK-NEXT: memref.dealloc %[[A]]
// CHECK:      %[[C:.*]] = memref.alloc
// CHECK:      func.call @exp(%[[B]], %[[C]]
// CHECK-NEXT: memref.dealloc %[[B]]
// CHECK-NEXT: func.return %[[C]]
