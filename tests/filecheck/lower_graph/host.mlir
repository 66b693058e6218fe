// RUN: relax-xdsl-opt %s -p legalize,lower-tir,lower-graph | filecheck %s
// RUN: relax-xdsl-opt %s -p baseline | relax-xdsl-opt | filecheck %s --check-prefix=BASELINE

builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 784], f32>, %y: !relax.tensor<[m, 784], f32>) -> tuple<!relax.tensor<[n, 784], f32>, !relax.tensor<[n + m, 784], f32>> {
    %c = relax.constant dense<2.0> : tensor<784xf32>
    %0 = relax.multiply %x, %c : (!relax.tensor<[n, 784], f32>, !relax.tensor<[784], f32>) -> !relax.tensor<[n, 784], f32>
    %1 = relax.concat %0, %y : (!relax.tensor<[n, 784], f32>, !relax.tensor<[m, 784], f32>) -> !relax.tensor<[m + n, 784], f32>
    %2 = relax.tuple %0, %1 : (!relax.tensor<[n, 784], f32>, !relax.tensor<[m + n, 784], f32>)
    relax.return %2 : tuple<!relax.tensor<[n, 784], f32>, !relax.tensor<[m + n, 784], f32>>
  }
}

// CHECK:      "memref.global"() <{sym_name = "__constant_0", type = memref<784xf32>
// CHECK:      func.func @main(%x: memref<?x784xf32>, %y: memref<?x784xf32>) -> (memref<?x784xf32>, memref<?x784xf32>) {
// CHECK:        %[[N:.*]] = memref.dim %x, %{{.*}}
// CHECK:        %[[M:.*]] = memref.dim %y, %{{.*}}
// CHECK:        memref.get_global @__constant_0
// CHECK:        %[[A:.*]] = memref.alloc(%[[N]]) {alignment = 64 : i64} : memref<?x784xf32>
// CHECK:        func.call @multiply(%x, %{{.*}}, %[[A]])
// CHECK:        %[[NM:.*]] = arith.addi
// CHECK:        %[[B:.*]] = memref.alloc(%[[NM]]) {alignment = 64 : i64} : memref<?x784xf32>
// CHECK:        func.call @concat(%[[A]], %y, %[[B]])
// CHECK:        func.return %[[A]], %[[B]] : memref<?x784xf32>, memref<?x784xf32>

// BASELINE: func.func @main
// BASELINE: func.func @multiply
// BASELINE: func.func @concat
