// RUN: relax-xdsl-opt %s -t dot | filecheck %s
// RUN: relax-xdsl-opt %s -p "offload{lib=blas}" -t dot | filecheck %s --check-prefix=OFFLOAD
// RUN: relax-xdsl-opt %s -p "offload{lib=blas},annotate-op-pattern,fuse-ops,fuse-tir" -t dot | filecheck %s --check-prefix=FUSED
// RUN: relax-xdsl-opt %s -p "offload{lib=blas},annotate-op-pattern,fuse-ops,fuse-tir,legalize" -t dot | filecheck %s --check-prefix=LEGAL
// RUN: (relax-xdsl-opt %s -p default -t dot; echo "exit $?") 2>&1 | filecheck %s --check-prefix=LOWERED

builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 2], f32>, %w: !relax.tensor<[2, m], f32>) -> (!relax.tensor<[n, k], f32>, !relax.tensor<[n, 1], f32>) {
    %0 = relax.constant dense<[1.0, 2.0]> : tensor<2xf32>
    %1:2 = relax.dataflow -> (!relax.tensor<[n, m], f32>, !relax.tensor<[n, 1], f32>) {
      %2 = relax.add %x, %0 : (!relax.tensor<[n, 2], f32>, !relax.tensor<[2], f32>) -> !relax.tensor<[n, 2], f32>
      %3 = relax.matmul %2, %w : (!relax.tensor<[n, 2], f32>, !relax.tensor<[2, m], f32>) -> !relax.tensor<[n, m], f32>
      %4 = relax.split %2 {indices_or_sections = 2 : i64, axis = 1 : i64} : (!relax.tensor<[n, 2], f32>) -> tuple<!relax.tensor<[n, 1], f32>, !relax.tensor<[n, 1], f32>>
      %5 = relax.get_item %4[1] : tuple<!relax.tensor<[n, 1], f32>, !relax.tensor<[n, 1], f32>>
      relax.output %3, %5 : !relax.tensor<[n, m], f32>, !relax.tensor<[n, 1], f32>
    }
    %6 = relax.relu %1#0 : (!relax.tensor<[n, m], f32>) -> !relax.tensor<[n, m], f32>
    %7 = relax.exp %6 : (!relax.tensor<[n, m], f32>) -> !relax.tensor<[n, m], f32>
    %8 = relax.match_cast %7 : !relax.tensor<[n, m], f32> -> !relax.tensor<[n, k], f32>
    relax.return %8, %1#1 : !relax.tensor<[n, k], f32>, !relax.tensor<[n, 1], f32>
  }
}

// Parameters and constants are nodes; the dataflow block is a nested
// cluster; values leaving it are drawn from the op inside that defines them.
// CHECK:      subgraph cluster_0 {
// CHECK-NEXT:   label="@main";
// CHECK-NEXT:   [[X:n[0-9]+]] [label="%x", shape=oval
// CHECK-NEXT:   [[W:n[0-9]+]] [label="%w", shape=oval
// CHECK-NEXT:   [[C:n[0-9]+]] [label="constant\n[2] f32", shape=note
// CHECK-NEXT:   subgraph cluster_1 {
// CHECK-NEXT:     label="dataflow";
// CHECK-NEXT:     style=dashed;
// CHECK-NEXT:     [[ADD:n[0-9]+]] [label="relax.add", shape=box];
// CHECK-NEXT:     [[X]] -> [[ADD]] [label="[n, 2] f32"];
// CHECK-NEXT:     [[C]] -> [[ADD]] [label="[2] f32"];
// CHECK-NEXT:     [[MM:n[0-9]+]] [label="relax.matmul", shape=box];
// CHECK-NEXT:     [[ADD]] -> [[MM]] [label="[n, 2] f32"];
// CHECK-NEXT:     [[W]] -> [[MM]] [label="[2, m] f32"];
// CHECK-NEXT:     [[SPLIT:n[0-9]+]] [label="relax.split\nindices_or_sections = 2\naxis = 1", shape=box];
// CHECK-NEXT:     [[ADD]] -> [[SPLIT]] [label="[n, 2] f32"];
// CHECK-NEXT:     [[ITEM:n[0-9]+]] [label="relax.get_item\nindex = 1", shape=box];
// CHECK-NEXT:     [[SPLIT]] -> [[ITEM]] [label="([n, 1] f32, [n, 1] f32)"];
// CHECK-NEXT:   }
// CHECK-NEXT:   [[RELU:n[0-9]+]] [label="relax.relu", shape=box];
// CHECK-NEXT:   [[MM]] -> [[RELU]] [label="[n, m] f32"];
// CHECK-NEXT:   [[EXP:n[0-9]+]] [label="relax.exp", shape=box];
// CHECK-NEXT:   [[RELU]] -> [[EXP]] [label="[n, m] f32"];
// CHECK-NEXT:   [[CAST:n[0-9]+]] [label="relax.match_cast", shape=box];
// CHECK-NEXT:   [[EXP]] -> [[CAST]] [label="[n, m] f32"];
// CHECK-NEXT:   [[RET:n[0-9]+]] [label="return", shape=oval
// CHECK-NEXT:   [[CAST]] -> [[RET]] [label="[n, k] f32"];
// CHECK-NEXT:   [[ITEM]] -> [[RET]] [label="[n, 1] f32"];
// CHECK-NEXT: }
// CHECK-NEXT: }

// After offload the matmul node is a library call.
// OFFLOAD: [label="lib.call @blas_matmul_2x2\nlibrary: blas", shape=box];
// OFFLOAD: [label="relax.relu", shape=box];

// After fusion a node is a call of a fused program, labelled with its ops.
// FUSED-NOT: relax.relu"
// FUSED:     [label="lib.call @blas_matmul_2x2\nlibrary: blas", shape=box];
// FUSED-NOT: relax.relu"
// FUSED:     [label="relax.call_tir @fused_exp_relu\nfused: relu, exp", shape=box];
// FUSED-NOT: relax.exp"
// FUSED:     [label="relax.match_cast", shape=box];

// Legalized, every graph op left is a call of a tensor program.
// LEGAL:     [label="relax.call_tir @add", shape=box];
// LEGAL:     [label="lib.call @blas_matmul_2x2\nlibrary: blas", shape=box];
// LEGAL:     [label="relax.call_tir @split", shape=box];
// LEGAL:     [label="relax.get_item\nindex = 1", shape=box];
// LEGAL:     [label="relax.call_tir @fused_exp_relu\nfused: relu, exp", shape=box];
// LEGAL:     [label="relax.match_cast", shape=box];

// Lowered to host functions, there is no graph left to draw.
// LOWERED:      relax-xdsl-opt: error: -t dot shows graph functions (relax.function), and the module has none
// LOWERED-NEXT: exit 1
