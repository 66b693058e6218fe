// RUN: relax-xdsl-opt %s | relax-xdsl-opt | filecheck %s --check-prefix=ROUNDTRIP
// RUN: relax-xdsl-opt %s -p legalize,lower-tir,lower-graph | filecheck %s

// Shape and scalar values on the host: a shape is a memref of i64, a scalar
// a 0-d memref; their values are read (and range-checked) once, bind the
// symbols they hold, and the *_to_tensor / tensor_to_* ops are the same memref.

builtin.module {
  relax.function @main(%s: !relax.shape<[a, b]>, %p: !relax.prim<i64, t>, %d: !relax.tensor<[1], i64>) -> (!relax.tensor<[2], i64>, !relax.prim<i64, t + 1>, !relax.shape<[c]>) {
    %m = relax.make_shape : !relax.shape<[a*b, t]>
    %v = relax.shape_to_tensor %m : !relax.shape<[a*b, t]> -> !relax.tensor<[2], i64>
    %q = relax.prim_value : !relax.prim<i64, t + 1>
    %w = relax.tensor_to_shape %d : !relax.tensor<[1], i64> -> !relax.shape<[c]>
    relax.return %v, %q, %w : !relax.tensor<[2], i64>, !relax.prim<i64, t + 1>, !relax.shape<[c]>
  }
}

// ROUNDTRIP:      relax.function @main(%s: !relax.shape<[a, b]>, %p: !relax.prim<i64, t>, %d: !relax.tensor<[1], i64>)
// ROUNDTRIP-NEXT:   %m = relax.make_shape : !relax.shape<[a*b, t]>
// ROUNDTRIP-NEXT:   %v = relax.shape_to_tensor %m : !relax.shape<[a*b, t]> -> !relax.tensor<[2], i64>
// ROUNDTRIP-NEXT:   %q = relax.prim_value : !relax.prim<i64, t + 1>
// ROUNDTRIP-NEXT:   %w = relax.tensor_to_shape %d : !relax.tensor<[1], i64> -> !relax.shape<[c]>

// CHECK:      func.func @main(%s: memref<2xi64>, %p: memref<i64>, %d: memref<1xi64>) -> (memref<2xi64>, memref<i64>, memref<1xi64>)
// CHECK:        %[[A64:.*]] = memref.load %s[%{{.*}}] : memref<2xi64>
// CHECK-NEXT:   %[[A:.*]] = arith.index_cast %[[A64]] : i64 to index
// CHECK:        cf.assert %{{.*}}, "@main: input s value 0 must lie below 2**62"
// CHECK:        cf.assert %{{.*}}, "@main: input s value 0 must lie above -2**62"
// CHECK:        cf.assert %{{.*}}, "@main: input s dim 0: symbol a must be >= {{[01]}}"
// CHECK:        %[[T64:.*]] = memref.load %p[] : memref<i64>
// CHECK:        %[[M:.*]] = memref.alloc() {alignment = 64 : i64} : memref<2xi64>
// CHECK:        memref.store %{{.*}}, %[[M]][%{{.*}}] : memref<2xi64>
// CHECK:        %[[Q:.*]] = memref.alloc() {alignment = 64 : i64} : memref<i64>
// CHECK:        memref.store %{{.*}}, %[[Q]][] : memref<i64>
// CHECK:        memref.load %d[%{{.*}}] : memref<1xi64>
// CHECK:        cf.assert %{{.*}}, "@main: relax.tensor_to_shape (%w) dim 0: symbol c must be >= {{[01]}}"
// CHECK:        %[[W:.*]] = memref.alloc() {{.*}}: memref<1xi64>
// CHECK-NEXT:   "memref.copy"(%d, %[[W]])
// CHECK:        func.return %[[M]], %[[Q]], %[[W]] : memref<2xi64>, memref<i64>, memref<1xi64>
