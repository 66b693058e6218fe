// RUN: relax-xdsl-opt %s | relax-xdsl-opt | filecheck %s

builtin.module {
  tir.prim_func @scale_half(%a: !tir.buffer<[n, 4], f32>, %out: !tir.buffer<[n floordiv 2, 4], f32>) syms [k] {
    %t = tir.alloc : !tir.buffer<[4], f32>
    tir.compute %t : !tir.buffer<[4], f32> reduce add [n] {
    ^bb0(%j: index, %r: index):
      %v = tir.load %a[%r, %j] : !tir.buffer<[n, 4], f32>
      tir.yield %v : f32
    } epilogue {
    ^bb0(%acc: f32, %j2: index):
      %h = arith.constant 5.000000e-01 : f32
      %w = arith.mulf %acc, %h : f32
      tir.yield %w : f32
    }
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %half = tir.sym n floordiv 2
    tir.for %i = %c0 to %half step %c1 parallel {
      tir.for %j = %c0 to %c1 step %c1 vectorize {
        %x = tir.load %t[%j] : !tir.buffer<[4], f32>
        tir.store %x, %out[%i, %j] : !tir.buffer<[n floordiv 2, 4], f32>
      }
    }
  }
  lib.func @mm (!tir.buffer<[n, k], f32>, !tir.buffer<[k, m], f32>, !tir.buffer<[n, m], f32>) -> () {symbol = "blas_matmul", library = "blas", header = "cblas.h", link = ["-lopenblas"], reference = "blas.matmul"}
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %y: !relax.tensor<[4, 3], f32>) -> !relax.tensor<[n, 3], f32> {
    %h = relax.call_tir @scale_half(%x) [n] : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n floordiv 2, 4], f32>
    %z = lib.call @mm(%x, %y) : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, 3], f32>) -> !relax.tensor<[n, 3], f32>
    relax.return %z : !relax.tensor<[n, 3], f32>
  }
}

// CHECK:      tir.prim_func @scale_half(%a: !tir.buffer<[n, 4], f32>, %out: !tir.buffer<[n floordiv 2, 4], f32>) syms [k] {
// CHECK:        tir.alloc : !tir.buffer<[4], f32>
// CHECK:        tir.compute %{{.*}} : !tir.buffer<[4], f32> reduce add [n] {
// CHECK:        } epilogue {
// CHECK:        tir.sym n floordiv 2
// CHECK:        tir.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} parallel {
// CHECK:          tir.for %{{.*}} vectorize {
// CHECK:            tir.store %{{.*}}, %out[%{{.*}}, %{{.*}}]
// CHECK:      lib.func @mm (!tir.buffer<[n, k], f32>, !tir.buffer<[k, m], f32>, !tir.buffer<[n, m], f32>) -> ()
// CHECK-SAME:   symbol = "blas_matmul"
// CHECK:      relax.call_tir @scale_half(%x) [n]
// CHECK:      lib.call @mm(%x, %y)
