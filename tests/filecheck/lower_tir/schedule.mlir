// RUN: relax-xdsl-opt %s -p lower-tir | filecheck %s

// A reduction whose innermost output axis is the contiguous index of a load
// (matmul's b[k, j]) stays serial: gcc vectorizes it across j.
builtin.module {
  tir.prim_func @matmul(%a: !tir.buffer<[n, k], f32>, %b: !tir.buffer<[k, m], f32>, %c: !tir.buffer<[n, m], f32>) {
    tir.compute %c : !tir.buffer<[n, m], f32> reduce add [k] {
    ^bb0(%i: index, %j: index, %r: index):
      %x = tir.load %a[%i, %r] : !tir.buffer<[n, k], f32>
      %y = tir.load %b[%r, %j] : !tir.buffer<[k, m], f32>
      %p = arith.mulf %x, %y : f32
      tir.yield %p : f32
    }
  }
}

// CHECK:     func.func @matmul
// CHECK-NOT: scf.parallel
// CHECK:     scf.for
// CHECK:       scf.for
// CHECK:         scf.for {{.*}} iter_args
// CHECK-NOT: scf.parallel
