// RUN: relax-xdsl-opt %s -p schedule-loops | filecheck %s

// schedule-loops tags an innermost loop `vectorize` (omp simd) when no
// iteration depends on another: it stores only at [fixed..., i] and reads
// what it stores only at that index. @row (softmax's output row: out[r, i] =
// exp(x[r, i] - m) / s) is one; @shifted reads a[i + 1] of the buffer it
// writes at a[i] (each iteration reads what the next one overwrites), @twice
// stores one buffer at two places, @checked holds a check whose failure
// leaves the loop (C forbids a branch out of an omp simd loop), @short runs
// 8 iterations (left to gcc).
builtin.module {
  func.func @row(%x: memref<4x64xf32>, %out: memref<4x64xf32>, %m: f32, %s: f32) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c64 = arith.constant 64 : index
    scf.for %i = %c0 to %c64 step %c1 {
      %v = memref.load %x[%c2, %i] : memref<4x64xf32>
      %d = arith.subf %v, %m : f32
      %e = math.exp %d : f32
      %q = arith.divf %e, %s : f32
      memref.store %q, %out[%c2, %i] : memref<4x64xf32>
    }
    func.return
  }
  func.func @shifted(%a: memref<65xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    scf.for %i = %c0 to %c64 step %c1 {
      %j = arith.addi %i, %c1 : index
      %v = memref.load %a[%j] : memref<65xf32>
      memref.store %v, %a[%i] : memref<65xf32>
    }
    func.return
  }
  func.func @twice(%a: memref<64xf32>, %b: memref<64x2xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    scf.for %i = %c0 to %c64 step %c1 {
      %v = memref.load %a[%i] : memref<64xf32>
      memref.store %v, %b[%i, %c0] : memref<64x2xf32>
      memref.store %v, %b[%i, %c1] : memref<64x2xf32>
    }
    func.return
  }
  func.func @checked(%a: memref<64xf32>, %b: memref<64xf32>, %n: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    scf.for %i = %c0 to %c64 step %c1 {
      %ok = arith.cmpi slt, %i, %n : index
      cf.assert %ok, "index out of range"
      %v = memref.load %a[%i] : memref<64xf32>
      memref.store %v, %b[%i] : memref<64xf32>
    }
    func.return
  }
  func.func @short(%a: memref<8xf32>, %b: memref<8xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    scf.for %i = %c0 to %c8 step %c1 {
      %v = memref.load %a[%i] : memref<8xf32>
      memref.store %v, %b[%i] : memref<8xf32>
    }
    func.return
  }
}

// CHECK:      func.func @row
// CHECK:        scf.for
// CHECK:        } {relax.loop = "vectorize"}
// CHECK:      func.func @shifted
// CHECK-NOT:    relax.loop
// CHECK:      func.func @twice
// CHECK-NOT:    relax.loop
// CHECK:      func.func @checked
// CHECK-NOT:    relax.loop
// CHECK:      func.func @short
// CHECK-NOT:    relax.loop
// CHECK:      }
