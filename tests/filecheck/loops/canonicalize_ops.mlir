// RUN: relax-xdsl-opt %s -p canonicalize-ops | filecheck %s

// xDSL's canonicalization patterns and folding: the index arithmetic on
// constants folds, a loop whose body only reads memory and whose result
// nobody uses goes, and so does the chain of pure ops that fed only it;
// the loop that stores stays. A loop without results is not asked whether
// it is dead (that question walks its whole body, per loop of a nest), so
// one that only reads loses its unused load but stays, empty: the C
// compiler drops it.
builtin.module {
  func.func @f(%in: memref<8xf32>, %out: memref<8xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %n = arith.muli %c2, %c4 : index
    %init = arith.constant 0.0 : f32
    %dead = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %init) -> (f32) {
      %x = memref.load %in[%i] : memref<8xf32>
      %s = arith.addf %acc, %x : f32
      scf.yield %s : f32
    }
    %twice = arith.addf %dead, %dead : f32
    scf.for %j = %c0 to %n step %c1 {
      %y = memref.load %in[%j] : memref<8xf32>
      memref.store %y, %out[%j] : memref<8xf32>
    }
    scf.for %k = %c0 to %n step %c1 {
      %z = memref.load %in[%k] : memref<8xf32>
    }
    func.return
  }
}

// CHECK:      func.func @f
// CHECK-NOT:  arith.muli
// CHECK-NOT:  arith.addf
// CHECK:      %[[C8:.*]] = arith.constant 8 : index
// CHECK:      scf.for %{{.*}} = %{{.*}} to %[[C8]] step
// CHECK-NEXT:   memref.load
// CHECK-NEXT:   memref.store
// CHECK:      scf.for %{{.*}} = %{{.*}} to %[[C8]] step
// CHECK-NEXT: }
// CHECK-NOT:  scf.for
