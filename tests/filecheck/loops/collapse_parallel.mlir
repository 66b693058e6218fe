// RUN: relax-xdsl-opt %s -p collapse-parallel | filecheck %s

// A parallel loop whose body is one serial loop (after invariant ops, which
// move out) becomes a 2-d parallel loop; a body that reads the parallel
// index before the loop, an inner loop bounded by it, one carrying a value
// or an innermost one (gcc vectorizes it) stays as it is.
builtin.module {
  func.func @f(%in: memref<?x8x4xf32>, %out: memref<?x8x4xf32>, %n: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    "scf.parallel"(%c0, %n, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%b: index):
      %two = arith.constant 2.0 : f32
      scf.for %c = %c0 to %c8 step %c1 {
        scf.for %w = %c0 to %c4 step %c1 {
          %x = memref.load %in[%b, %c, %w] : memref<?x8x4xf32>
          %y = arith.mulf %x, %two : f32
          memref.store %y, %out[%b, %c, %w] : memref<?x8x4xf32>
        }
      }
      scf.reduce
    }) : (index, index, index) -> ()
    "scf.parallel"(%c0, %n, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%b2: index):
      %k = arith.addi %b2, %c1 : index
      scf.for %c2 = %c0 to %k step %c1 {
        %x2 = memref.load %in[%b2, %c2, %c0] : memref<?x8x4xf32>
        memref.store %x2, %out[%b2, %c2, %c0] : memref<?x8x4xf32>
      }
      scf.reduce
    }) : (index, index, index) -> ()
    "scf.parallel"(%c0, %n, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%b3: index):
      %zero = arith.constant 0.0 : f32
      %s = scf.for %c3 = %c0 to %c8 step %c1 iter_args(%acc = %zero) -> (f32) {
        %x3 = memref.load %in[%b3, %c3, %c0] : memref<?x8x4xf32>
        %a = arith.addf %acc, %x3 : f32
        scf.yield %a : f32
      }
      memref.store %s, %out[%b3, %c0, %c0] : memref<?x8x4xf32>
      scf.reduce
    }) : (index, index, index) -> ()
    "scf.parallel"(%c0, %n, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%b4: index):
      scf.for %c4_ = %c0 to %c8 step %c1 {
        %x4 = memref.load %in[%b4, %c4_, %c0] : memref<?x8x4xf32>
        memref.store %x4, %out[%b4, %c4_, %c0] : memref<?x8x4xf32>
      }
      scf.reduce
    }) : (index, index, index) -> ()
    func.return
  }
}

// CHECK:      %two = arith.constant 2.000000e+00 : f32
// CHECK-NEXT: "scf.parallel"(%c0, %c0, %n, %c8, %c1, %c1) <{operandSegmentSizes = array<i32: 2, 2, 2, 0>}> ({
// CHECK-NEXT: ^bb0(%b: index, %c: index):
// CHECK-NEXT:   scf.for %w = %c0 to %c4 step %c1 {
// CHECK-NEXT:     %x = memref.load %in[%b, %c, %w]
// CHECK:        scf.reduce
// CHECK:      "scf.parallel"(%c0, %n, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
// CHECK-NEXT: ^bb0(%b2: index):
// CHECK-NEXT:   %k = arith.addi %b2, %c1
// CHECK:      "scf.parallel"(%c0, %n, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
// CHECK-NEXT: ^bb0(%b3: index):
// CHECK:      "scf.parallel"(%c0, %n, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
// CHECK-NEXT: ^bb0(%b4: index):
