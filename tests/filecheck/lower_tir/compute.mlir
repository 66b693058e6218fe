// RUN: relax-xdsl-opt %s -p lower-tir | filecheck %s

builtin.module {
  tir.prim_func @rowsum(%a: !tir.buffer<[n, k], f32>, %out: !tir.buffer<[n], f32>) {
    tir.compute %out : !tir.buffer<[n], f32> reduce add [k] {
    ^bb0(%i: index, %r: index):
      %v = tir.load %a[%i, %r] : !tir.buffer<[n, k], f32>
      tir.yield %v : f32
    }
  }
  tir.prim_func @pairs(%a: !tir.buffer<[2*n], f32>, %out: !tir.buffer<[n], f32>) syms [n] {
    tir.compute %out : !tir.buffer<[n], f32> {
    ^bb0(%i: index):
      %v = tir.load %a[%i] : !tir.buffer<[2*n], f32>
      tir.yield %v : f32
    }
  }
}

// Symbols are bound once from buffer dims; other dims are checked on entry.
// CHECK:      func.func @rowsum(%a: memref<?x?xf32>, %out: memref<?xf32>) attributes {relax.buffers = [!tir.buffer<[n, k], f32>, !tir.buffer<[n], f32>]} {
// CHECK:        %[[N:.*]] = memref.dim %a, %{{.*}} : memref<?x?xf32>
// CHECK:        %[[K:.*]] = memref.dim %a, %{{.*}} : memref<?x?xf32>
// CHECK:        %[[OUT0:.*]] = memref.dim %out, %{{.*}} : memref<?xf32>
// CHECK:        arith.cmpi eq, %[[OUT0]], %[[N]] : index
// CHECK:        cf.assert %{{.*}}, "tensor program rowsum: buffer out dim 0 is not n"
// A row reduction: its outermost output axis is parallel (default schedule).
// CHECK:        "scf.parallel"(%{{.*}}, %[[N]], %{{.*}})
// CHECK-NEXT:   ^bb0(%[[I:.*]]: index):
// CHECK:          %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK:          %[[ACC:.*]] = scf.for %[[R:.*]] = %{{.*}} to %[[K]] step %{{.*}} iter_args(%[[A:.*]] = %[[ZERO]]) -> (f32) {
// CHECK:            memref.load %a[%[[I]], %[[R]]]
// CHECK:            arith.addf %[[A]], %{{.*}} : f32
// CHECK:          memref.store %[[ACC]], %out[%[[I]]]
// CHECK-NEXT:     scf.reduce
// CHECK:        func.return

// Index parameters bind symbols no buffer dim binds on its own.
// CHECK:      func.func @pairs(%a: memref<?xf32>, %out: memref<?xf32>, %n: index)
// CHECK:        arith.muli %{{.*}}, %n : index
// CHECK:        cf.assert %{{.*}}, "tensor program pairs: buffer a dim 0 is not 2*n"
// A compute without reduction: parallel too.
// CHECK:        "scf.parallel"(%{{.*}}, %n, %{{.*}})
// CHECK:          scf.reduce

