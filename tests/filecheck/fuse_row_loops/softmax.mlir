// RUN: relax-xdsl-opt %s -p legalize,lower-tir,fuse-row-loops | filecheck %s

// softmax's three computes (row max, row sum of exp, output row) are three
// loops over the rows after lower-tir; each touches what the others write
// only at its own row, so they become one parallel loop: per row, the max,
// the sum and the output while the row is in cache.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 16], f32>) -> !relax.tensor<[n, 16], f32> {
    %0 = relax.softmax %x {axis = -1 : i64} : (!relax.tensor<[n, 16], f32>) -> !relax.tensor<[n, 16], f32>
    relax.return %0 : !relax.tensor<[n, 16], f32>
  }
}

// CHECK:      func.func @softmax(%data: memref<?x16xf32>, %out: memref<?x16xf32>)
// CHECK:      %[[MAX:.*]] = memref.alloc(%{{.*}}) {{.*}}: memref<?xf32>
// CHECK-NEXT: %[[SUM:.*]] = memref.alloc(%{{.*}}) {{.*}}: memref<?xf32>
// CHECK-NEXT: "scf.parallel"
// CHECK-NEXT: ^{{.*}}(%[[ROW:.*]]: index):
// CHECK:        scf.for
// CHECK:        memref.store %{{.*}}, %[[MAX]][%[[ROW]]]
// CHECK:        scf.for
// CHECK:        memref.store %{{.*}}, %[[SUM]][%[[ROW]]]
// CHECK:        scf.for
// CHECK:        memref.store %{{.*}}, %out[%[[ROW]], %{{.*}}]
// CHECK:        scf.reduce
// CHECK-NEXT: })
// CHECK-NOT:  scf.parallel
// CHECK:      func.return
