// RUN: relax-xdsl-opt %s -p unroll-short-loops | filecheck %s

// A 2x2 window (two constant 2-trip loops, innermost) becomes straight-line
// code, inner loop first, so the 8-trip output loop is innermost; a 5-trip loop, a
// loop with a run-time bound and a loop tagged for OpenMP simd stay loops.
builtin.module {
  func.func @pool(%in: memref<8x8xf32>, %out: memref<8x8xf32>, %n: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c5 = arith.constant 5 : index
    %c8 = arith.constant 8 : index
    %init = arith.constant 0.0 : f32
    scf.for %i = %c0 to %c8 step %c1 {
      scf.for %j = %c0 to %c8 step %c1 {
        %r = scf.for %a = %c0 to %c2 step %c1 iter_args(%acc = %init) -> (f32) {
          %s = scf.for %b = %c0 to %c2 step %c1 iter_args(%acc2 = %acc) -> (f32) {
            %x = memref.load %in[%a, %b] : memref<8x8xf32>
            %m = arith.maximumf %acc2, %x : f32
            scf.yield %m : f32
          }
          scf.yield %s : f32
        }
        memref.store %r, %out[%i, %j] : memref<8x8xf32>
      }
    }
    scf.for %k = %c0 to %c5 step %c1 {
      memref.store %init, %out[%k, %k] : memref<8x8xf32>
    }
    scf.for %k = %c0 to %n step %c1 {
      memref.store %init, %out[%k, %k] : memref<8x8xf32>
    }
    scf.for %k = %c0 to %c2 step %c1 {
      memref.store %init, %out[%k, %k] : memref<8x8xf32>
    } {relax.loop = "vectorize"}
    func.return
  }
}

// CHECK:      scf.for %i = %c0 to %c8 step %c1 {
// CHECK-NEXT:   scf.for %j = %c0 to %c8 step %c1 {
// CHECK-NOT:      scf.for
// CHECK:          %x = memref.load %in[
// CHECK:          %m = arith.maximumf %init, %x
// CHECK-COUNT-3:  arith.maximumf
// CHECK-NOT:      scf.for
// CHECK:          memref.store %{{.*}}, %out[%i, %j]
// CHECK:      scf.for %k = %c0 to %c5 step %c1 {
// CHECK:      scf.for %k_1 = %c0 to %n step %c1 {
// CHECK:      scf.for %k_2 = %c0 to %c2 step %c1 {
// CHECK:      } {relax.loop = "vectorize"}
