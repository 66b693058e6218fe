// RUN: relax-xdsl-opt %s -p legalize,lower-tir,lower-graph | filecheck %s

// A reshape is a view of the same data (no copy, no kernel call), after a
// check that the element counts agree.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 6], f32>) -> !relax.tensor<[3*n floordiv 2, 4], f32> {
    %0 = relax.reshape %x {shape = #relax.dims<[-1, 4]>} : (!relax.tensor<[n, 6], f32>) -> !relax.tensor<[(3*n) floordiv 2, 4], f32>
    %1 = relax.exp %0 : (!relax.tensor<[(3*n) floordiv 2, 4], f32>) -> !relax.tensor<[(3*n) floordiv 2, 4], f32>
    relax.return %1 : !relax.tensor<[(3*n) floordiv 2, 4], f32>
  }
}

// CHECK:      func.func @main(%x: memref<?x6xf32>) -> memref<?x4xf32> {
// CHECK:        cf.assert %{{.*}}, "@main: relax.call_tir @reshape: 6*n elements cannot be viewed as 4*((3*n) floordiv 2)"
// CHECK:        %[[V:.*]] = memref.reinterpret_cast %x to offset: [0], sizes: [%{{.*}}, 4], strides: [4, 1] : memref<?x6xf32> to memref<?x4xf32>
// CHECK-NOT:    func.call @reshape
// CHECK:        func.call @exp(%[[V]], %{{.*}})
