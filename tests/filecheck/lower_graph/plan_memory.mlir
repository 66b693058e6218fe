// RUN: relax-xdsl-opt %s -p legalize,lower-tir,lower-graph | filecheck %s

// Memory planning: the intermediates share one pool allocated once, after
// the inputs are bound, each at an offset placed largest first (symbolic,
// valid for every n; c = n ceildiv 2 below, sizes rounded up to 64 bytes):
// %3 ([n, 16] f32, 64*n bytes) at 0; %0 ([n, 8]) is dead by the time %3 is
// made, so it shares offset 0; %1 overlaps %0 and goes after it (64*c);
// %2 overlaps %1 and %3 and goes after both (128*c >= 64*n). The pool is
// the highest end, 192*c (64*n, %3's end, is provably below it). The result
// is its own buffer (the caller owns it); the pool is freed before the return.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 16], f32> {
    %0 = relax.exp %x : (!relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32>
    %1 = relax.tanh %0 : (!relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32>
    %2 = relax.relu %1 : (!relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32>
    %3 = relax.concat %2, %2 {axis = 1 : i64} : (!relax.tensor<[n, 8], f32>, !relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 16], f32>
    %4 = relax.negative %3 : (!relax.tensor<[n, 16], f32>) -> !relax.tensor<[n, 16], f32>
    relax.return %4 : !relax.tensor<[n, 16], f32>
  }
}

// CHECK:      func.func @main(%x: memref<?x8xf32>) -> memref<?x16xf32>
// CHECK-SAME: relax.memory_plan = {buffers = 4 : i64, unshared_bytes = #relax.dims<[64*n + 192*(n ceildiv 2)]>, peak_live_bytes = #relax.dims<[max(64*n + 64*(n ceildiv 2), 128*(n ceildiv 2))]>, pool_bytes = #relax.dims<[192*(n ceildiv 2)]>}
// CHECK:      %[[N:.*]] = memref.dim %x
// CHECK-NEXT: %[[POS:.*]] = arith.cmpi sge, %[[N]], %{{.*}} : index
// CHECK-NEXT: cf.assert %[[POS]], "@main: input x dim 0: symbol n must be >= 0"
// CHECK-NEXT: %[[ZERO:.*]] = arith.constant 0 : index
// CHECK-NEXT: %{{.*}} = arith.constant 2 : index
// CHECK-NEXT: %[[C:.*]] = arith.ceildivsi
// CHECK:      %[[OFF1:.*]] = arith.muli %[[C]], %{{.*}} {relax.checked = "@main: computing 64*(n ceildiv 2) overflows 64-bit integers (allocation limit exceeded)"} : index
// CHECK:      %[[OFF2:.*]] = arith.muli %[[C]], %{{.*}} {relax.checked = "{{.*}}"} : index
// CHECK:      %[[SIZE:.*]] = arith.muli %[[C]], %{{.*}} {relax.checked = "{{.*}}"} : index
// CHECK-NEXT: %pool = memref.alloc(%[[SIZE]]) {alignment = 64 : i64, relax.pool} : memref<?xi8>
// CHECK-NEXT: %[[A:.*]] = memref.view %pool[%[[ZERO]]][%{{.*}}] : memref<?xi8> to memref<?x8xf32>
// CHECK-NEXT: func.call @exp(%x, %[[A]])
// CHECK-NEXT: %[[B:.*]] = memref.view %pool[%[[OFF1]]][%{{.*}}] : memref<?xi8> to memref<?x8xf32>
// CHECK-NEXT: func.call @tanh(%[[A]], %[[B]])
// CHECK-NEXT: %[[R:.*]] = memref.view %pool[%[[OFF2]]][%{{.*}}] : memref<?xi8> to memref<?x8xf32>
// CHECK-NEXT: func.call @relu(%[[B]], %[[R]])
// CHECK-NEXT: %[[D:.*]] = memref.view %pool[%[[ZERO]]][%{{.*}}] : memref<?xi8> to memref<?x16xf32>
// CHECK-NEXT: func.call @concat(%[[R]], %[[R]], %[[D]])
// CHECK-NEXT: %[[OUT:.*]] = memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<?x16xf32>
// CHECK-NEXT: func.call @negative(%[[D]], %[[OUT]])
// CHECK-NEXT: memref.dealloc %pool : memref<?xi8>
// CHECK-NEXT: func.return %[[OUT]]
