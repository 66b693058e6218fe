// RUN: relax-xdsl-opt %s -p legalize | filecheck %s

// Merging heads (b, t, 4, 64) -> (b, t, 256) indexes each run of dims on its
// own: b and t pass through, the merged dim is split by the constant 64, and
// no index is divided by a symbol.
builtin.module {
  relax.function @main(%x: !relax.tensor<[b, t, 4, 64], f32>) -> !relax.tensor<[b, t, 256], f32> {
    %0 = relax.reshape %x {shape = #relax.dims<[b, t, 256]>} : (!relax.tensor<[b, t, 4, 64], f32>) -> !relax.tensor<[b, t, 256], f32>
    relax.return %0 : !relax.tensor<[b, t, 256], f32>
  }
}

// CHECK:      tir.prim_func @reshape(%x: !tir.buffer<[b, t, 4, 64], f32>, %out: !tir.buffer<[b, t, 256], f32>)
// CHECK:        tir.compute %out
// CHECK-NEXT:   ^{{.*}}(%[[I:.*]]: index, %[[J:.*]]: index, %[[K:.*]]: index):
// CHECK-NOT:      tir.load
// CHECK:          %[[R:.*]] = arith.remsi %[[K]], %{{.*}} : index
// CHECK-NOT:      tir.load
// CHECK:          %[[Q:.*]] = arith.floordivsi %[[K]], %{{.*}} : index
// CHECK-NEXT:     %{{.*}} = tir.load %x[%[[I]], %[[J]], %[[Q]], %[[R]]]
