// RUN: relax-xdsl-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics | filecheck %s
// RUN: (relax-xdsl-opt %s --split-input-file; echo "exit $?") 2>&1 | filecheck %s --check-prefix=FIRST

// Each chunk fails the verifier; the diagnostic names the op and its line
// and column in the whole file. Without --verify-diagnostics the first
// failure is an error (exit 1).

builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32> {
    // CHECK: verify.mlir:[[# @LINE + 2]]:5: relax.call_tir: verification failed: relax.call_tir @relu: 2 inputs + 1 outputs, but the callee takes 2 buffers
    // FIRST: relax-xdsl-opt: error: {{.*}}verify.mlir:[[# @LINE + 1]]:5: relax.call_tir: verification failed
    %0 = relax.call_tir @relu(%x, %x) : (!relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    relax.return %0 : !relax.tensor<[n, 4], f32>
  }
  tir.prim_func @relu(%x: !tir.buffer<[n, 4], f32>, %out: !tir.buffer<[n, 4], f32>) {
    tir.compute %out : !tir.buffer<[n, 4], f32> {
    ^bb0(%i: index, %j: index):
      %v = tir.load %x[%i, %j] : !tir.buffer<[n, 4], f32>
      tir.yield %v : f32
    }
  }
}
// FIRST-NEXT: exit 1

// -----

// CHECK: //{{ -----}}
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32> {
    // CHECK: verify.mlir:[[# @LINE + 1]]:5: relax.call_tir: verification failed: relax.call_tir @relu: input 0 has rank 2, the callee's buffer 0 rank 1
    %0 = relax.call_tir @relu(%x) : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    relax.return %0 : !relax.tensor<[n, 4], f32>
  }
  tir.prim_func @relu(%x: !tir.buffer<[n], f32>, %out: !tir.buffer<[n, 4], f32>) {
    tir.compute %out : !tir.buffer<[n, 4], f32> {
    ^bb0(%i: index, %j: index):
      %v = tir.load %x[%i] : !tir.buffer<[n], f32>
      tir.yield %v : f32
    }
  }
}

// -----

// CHECK: //{{ -----}}
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32> {
    // CHECK: verify.mlir:[[# @LINE + 1]]:5: relax.call_tir: verification failed: relax.call_tir @relu: input 0 is float32, the callee's buffer 0 float64
    %0 = relax.call_tir @relu(%x) : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    relax.return %0 : !relax.tensor<[n, 4], f32>
  }
  tir.prim_func @relu(%x: !tir.buffer<[n, 4], f64>, %out: !tir.buffer<[n, 4], f32>) {
    tir.compute %out : !tir.buffer<[n, 4], f32> {
    ^bb0(%i: index, %j: index):
      %v = tir.load %x[%i, %j] : !tir.buffer<[n, 4], f64>
      %w = arith.truncf %v : f64 to f32
      tir.yield %w : f32
    }
  }
}

// -----

// CHECK: //{{ -----}}
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32> {
    relax.return %x : !relax.tensor<[n, 4], f32>
  }
  // CHECK: verify.mlir:[[# @LINE + 1]]:3: relax.function: verification failed: Redefinition of symbol "main"
  relax.function @main(%x: !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32> {
    relax.return %x : !relax.tensor<[n, 4], f32>
  }
}

// -----

// CHECK: //{{ -----}}
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %w: !relax.tensor<[5, m], f32>) -> !relax.tensor<[n, m], f32> {
    // CHECK: verify.mlir:[[# @LINE + 1]]:5: relax.matmul: verification failed: relax.matmul{{.*}}4{{.*}}5
    %0 = relax.matmul %x, %w : (!relax.tensor<[n, 4], f32>, !relax.tensor<[5, m], f32>) -> !relax.tensor<[n, m], f32>
    relax.return %0 : !relax.tensor<[n, m], f32>
  }
}

// -----

// CHECK: //{{ -----}}
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], i32> {
    // CHECK: verify.mlir:[[# @LINE + 1]]:5: relax.match_cast: verification failed: relax.match_cast cannot change the dtype (float32 -> int32)
    %0 = relax.match_cast %x : !relax.tensor<[n, 4], f32> -> !relax.tensor<[n, 4], i32>
    relax.return %0 : !relax.tensor<[n, 4], i32>
  }
}

// -----

// A parse error (here a bad dim expression) in a later chunk, too, names its line.
// CHECK: //{{ -----}}
// CHECK:      verify.mlir:[[# @LINE + 3]]:37{{$}}
// CHECK-NEXT: func.func @f(%x: !relax.tensor<[n + , 4], f32>) {
// CHECK:      expected a dim: an integer, a symbol name or a parenthesized expression
func.func @f(%x: !relax.tensor<[n + , 4], f32>) {
  func.return
}
