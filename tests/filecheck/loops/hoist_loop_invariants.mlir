// RUN: relax-xdsl-opt %s -p hoist-loop-invariants | filecheck %s

// Index math that depends only on values outside a loop moves before it,
// remainders and floor/ceil divisions included (total on both targets);
// chains move together, out of nested loops level by level. A signed
// division (the interpreter raises on a zero divisor), loads and stores stay.
builtin.module {
  func.func @f(%in: memref<?x?x64xf32>, %out: memref<?x64xf32>, %n: index, %s: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    "scf.parallel"(%c0, %n, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%i: index):
      scf.for %j = %c0 to %c64 step %c1 {
        %r = arith.remsi %i, %s : index
        %q = arith.floordivsi %i, %s : index
        %q1 = arith.addi %q, %c1 : index
        %d = arith.divsi %i, %s : index
        %k = arith.ceildivsi %s, %c64 : index
        %x = memref.load %in[%q, %r, %j] : memref<?x?x64xf32>
        memref.store %x, %out[%i, %j] : memref<?x64xf32>
      }
      scf.reduce
    }) : (index, index, index) -> ()
    func.return
  }
}

// CHECK:      %k = arith.ceildivsi %s, %c64 : index
// CHECK-NEXT: "scf.parallel"
// CHECK-NEXT: ^bb0(%i: index):
// CHECK-NEXT:   %r = arith.remsi %i, %s : index
// CHECK-NEXT:   %q = arith.floordivsi %i, %s : index
// CHECK-NEXT:   %q1 = arith.addi %q, %c1 : index
// CHECK-NEXT:   scf.for %j = %c0 to %c64 step %c1 {
// CHECK-NEXT:     %d = arith.divsi %i, %s : index
// CHECK-NEXT:     %x = memref.load %in[%q, %r, %j]
// CHECK-NEXT:     memref.store %x, %out[%i, %j]
