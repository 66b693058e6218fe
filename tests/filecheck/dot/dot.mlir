// RUN: relax-xdsl-opt %s -t dot | filecheck %s
// RUN: relax-xdsl-opt %s -p legalize -t dot | filecheck %s --check-prefix=LEGAL

builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %w: !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, m], f32> {
    %0 = relax.matmul %x, %w : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, m], f32>
    %1 = relax.softmax %0 {axis = 1 : i64} : (!relax.tensor<[n, m], f32>) -> !relax.tensor<[n, m], f32>
    relax.return %1 : !relax.tensor<[n, m], f32>
  }
}

// Ops are nodes, values are edges labelled with their symbolic shapes.
// CHECK:      digraph relax {
// CHECK:        subgraph cluster_0 {
// CHECK-NEXT:     label="@main";
// CHECK-NEXT:     [[X:n[0-9]+]] [label="%x", shape=oval
// CHECK-NEXT:     [[W:n[0-9]+]] [label="%w", shape=oval
// CHECK-NEXT:     [[MM:n[0-9]+]] [label="relax.matmul", shape=box];
// CHECK-NEXT:     [[X]] -> [[MM]] [label="[n, 4] f32"];
// CHECK-NEXT:     [[W]] -> [[MM]] [label="[4, m] f32"];
// CHECK-NEXT:     [[SM:n[0-9]+]] [label="relax.softmax\naxis = 1", shape=box];
// CHECK-NEXT:     [[MM]] -> [[SM]] [label="[n, m] f32"];
// CHECK-NEXT:     [[RET:n[0-9]+]] [label="return", shape=oval
// CHECK-NEXT:     [[SM]] -> [[RET]] [label="[n, m] f32"];

// After legalize the nodes are calls of tensor programs.
// LEGAL: [label="relax.call_tir @matmul", shape=box];
// LEGAL: [label="relax.call_tir @softmax", shape=box];
