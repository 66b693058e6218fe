// RUN: relax-xdsl-opt %s -p annotate-op-pattern | filecheck %s --check-prefix=PATTERN
// RUN: relax-xdsl-opt %s -p annotate-op-pattern,fuse-ops | filecheck %s --check-prefix=GROUPS
// RUN: relax-xdsl-opt %s -p annotate-op-pattern,fuse-ops,fuse-tir | filecheck %s --check-prefix=TIR

builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %b: !relax.tensor<[4], f32>, %w: !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, m], f32> {
    %0 = relax.exp %x : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    %1 = relax.add %0, %b : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4], f32>) -> !relax.tensor<[n, 4], f32>
    %2 = relax.matmul %1, %w : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, m], f32>
    %3 = relax.relu %2 : (!relax.tensor<[n, m], f32>) -> !relax.tensor<[n, m], f32>
    relax.return %3 : !relax.tensor<[n, m], f32>
  }
}

// Each op's pattern kind, from its OpSpec.
// PATTERN:      relax.exp %x {relax.op_pattern = "elementwise"}
// PATTERN-NEXT: relax.add %0, %b {relax.op_pattern = "broadcast"}
// PATTERN-NEXT: relax.matmul %1, %w {relax.op_pattern = "output-fusible"}
// PATTERN-NEXT: relax.relu %2 {relax.op_pattern = "elementwise"}

// Two groups: exp + add feed only the matmul (injective producers); relu is
// the matmul's epilogue, so it takes the matmul, which is then no longer a root.
// GROUPS:      relax.exp %x {relax.op_pattern = "elementwise", relax.fusion_group = [[G0:[0-9]+]] : i64}
// GROUPS-NEXT: relax.add %0, %b {relax.op_pattern = "broadcast", relax.fusion_group = [[G0]] : i64}
// GROUPS-NEXT: relax.matmul %1, %w {relax.op_pattern = "output-fusible", relax.fusion_group = [[G1:[0-9]+]] : i64}
// GROUPS-NEXT: relax.relu %2 {relax.op_pattern = "elementwise", relax.fusion_group = [[G1]] : i64}

// One program per group, nothing in between stored.
// TIR:      %0 = relax.call_tir @fused_add_exp(%x, %b)
// TIR-NEXT: %1 = relax.call_tir @fused_relu_matmul(%0, %w)
// TIR-NEXT: relax.return %1
// TIR:      tir.prim_func @fused_add_exp({{.*}}) attributes {relax.fused = "exp,add"}
// TIR-NOT:  tir.alloc
// TIR:      tir.prim_func @fused_relu_matmul({{.*}}) attributes {relax.fused = "matmul,relu"}
