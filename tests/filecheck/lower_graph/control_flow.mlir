// RUN: relax-xdsl-opt %s -p legalize,lower-tir,lower-graph | filecheck %s

// relax.if / relax.while / relax.call on the host: scf.if and scf.while
// carry buffers their regions own (a yielded outer value is copied), the
// loop owns copies of its initial values, a call returns buffers the caller
// frees, and the symbols the results name are bound after each op.

builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %y: !relax.tensor<[m, 4], f32>, %c: !relax.tensor<[], i1>) -> !relax.tensor<[s, 4], f32> {
    %r = relax.if %c : !relax.tensor<[], i1> -> (!relax.tensor<[s, 4], f32>) {
      %a = relax.exp %x : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
      relax.yield %a : !relax.tensor<[n, 4], f32>
    } else {
      relax.yield %y : !relax.tensor<[m, 4], f32>
    }
    %w = relax.call @twice(%r) : (!relax.tensor<[s, 4], f32>) -> (!relax.tensor<[s, 4], f32>)
    relax.return %w : !relax.tensor<[s, 4], f32>
  }
  relax.function @twice(%x: !relax.tensor<[k, 4], f32>) -> !relax.tensor<[k, 4], f32> {
    %a = relax.add %x, %x : (!relax.tensor<[k, 4], f32>, !relax.tensor<[k, 4], f32>) -> !relax.tensor<[k, 4], f32>
    relax.return %a : !relax.tensor<[k, 4], f32>
  }
  relax.function @grow(%x: !relax.tensor<[1, 4], f32>, %n: !relax.tensor<[], i64>) -> !relax.tensor<[r, 4], f32> {
    %z = relax.constant dense<0> : tensor<i64>
    %res:2 = relax.while (%x, %z) : (!relax.tensor<[1, 4], f32>, !relax.tensor<[], i64>) -> (!relax.tensor<[r, 4], f32>, !relax.tensor<[], i64>) {
    ^bb0(%acc: !relax.tensor<[k, 4], f32>, %i: !relax.tensor<[], i64>):
      %go = relax.less %i, %n : (!relax.tensor<[], i64>, !relax.tensor<[], i64>) -> !relax.tensor<[], i1>
      relax.condition %go : !relax.tensor<[], i1>, %acc, %i : !relax.tensor<[k, 4], f32>, !relax.tensor<[], i64>
    } do {
    ^bb1(%acc2: !relax.tensor<[k, 4], f32>, %i2: !relax.tensor<[], i64>):
      %more = relax.concat %acc2, %x : (!relax.tensor<[k, 4], f32>, !relax.tensor<[1, 4], f32>) -> !relax.tensor<[k + 1, 4], f32>
      %one = relax.constant dense<1> : tensor<i64>
      %j = relax.add %i2, %one : (!relax.tensor<[], i64>, !relax.tensor<[], i64>) -> !relax.tensor<[], i64>
      relax.yield %more, %j : !relax.tensor<[k + 1, 4], f32>, !relax.tensor<[], i64>
    }
    relax.return %res#0 : !relax.tensor<[r, 4], f32>
  }
}

// CHECK:      func.func @main(%x: memref<?x4xf32>, %y: memref<?x4xf32>, %c: memref<i1>) -> memref<?x4xf32> {
// CHECK:        %[[C:.*]] = memref.load %c[] : memref<i1>
// CHECK-NEXT:   %[[R:.*]] = scf.if %[[C]] -> (memref<?x4xf32>) {
// CHECK-NEXT:     %[[E:.*]] = memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<?x4xf32>
// CHECK-NEXT:     func.call @exp(%x, %[[E]])
// CHECK-NEXT:     scf.yield %[[E]] : memref<?x4xf32>
// CHECK-NEXT:   } else {
// CHECK-NEXT:     %[[Y:.*]] = memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<?x4xf32>
// CHECK-NEXT:     "memref.copy"(%y, %[[Y]])
// CHECK-NEXT:     scf.yield %[[Y]] : memref<?x4xf32>
// CHECK-NEXT:   }
// CHECK-NEXT:   %[[S:.*]] = memref.dim %[[R]], %{{.*}} : memref<?x4xf32>
// CHECK:        cf.assert %{{.*}}, "@main: relax.if dim 0: symbol s must be >= 0"
// CHECK-NEXT:   %[[W:.*]] = func.call @twice(%[[R]]) : (memref<?x4xf32>) -> memref<?x4xf32>
// CHECK-NEXT:   memref.dealloc %[[R]] : memref<?x4xf32>
// CHECK:        cf.assert %{{.*}}, "@main: relax.call @twice dim 0 is not s"
// CHECK-NEXT:   func.return %[[W]] : memref<?x4xf32>

// CHECK:      func.func @grow(%x: memref<1x4xf32>, %n: memref<i64>) -> memref<?x4xf32> {
// CHECK:        %[[X0:.*]] = memref.alloc() {alignment = 64 : i64} : memref<1x4xf32>
// CHECK-NEXT:   "memref.copy"(%x, %[[X0]])
// CHECK:        %{{.*}}, %[[I:.*]] = scf.while (%[[ACC:.*]] = %{{.*}}, %[[IT:.*]] = %{{.*}}) : (memref<?x4xf32>, memref<i64>) -> (memref<?x4xf32>, memref<i64>) {
// CHECK:          cf.assert %{{.*}}, "@grow: relax.while (before) carried value dim 0: symbol k must be >= 0"
// CHECK:          scf.condition(%{{.*}}) %[[ACC]], %[[IT]] : memref<?x4xf32>, memref<i64>
// CHECK-NEXT:   } do {
// CHECK-NEXT:   ^bb0(%[[ACC2:.*]]: memref<?x4xf32>, %[[IT2:.*]]: memref<i64>):
// CHECK:          %[[MORE:.*]] = memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<?x4xf32>
// CHECK-NEXT:     func.call @concat(%[[ACC2]], %x, %[[MORE]])
// CHECK-NEXT:     memref.dealloc %[[ACC2]] : memref<?x4xf32>
// CHECK:          memref.dealloc %[[IT2]] : memref<i64>
// CHECK-NEXT:     scf.yield %[[MORE]], %{{.*}} : memref<?x4xf32>, memref<i64>
// CHECK-NEXT:   }
// CHECK-NEXT:   memref.dealloc %[[I]] : memref<i64>
// CHECK:        cf.assert %{{.*}}, "@grow: relax.while dim 0: symbol r must be >= 0"
