// RUN: relax-xdsl-opt %s -p debug --print-ir-after-all 2>&1 >/dev/null | filecheck %s --check-prefix=ALL
// RUN: relax-xdsl-opt %s -p "legalize{ops=relu},debug" --print-ir-after=legalize --print-op-generic 2>&1 >/dev/null | filecheck %s --check-prefix=AFTER
// RUN: relax-xdsl-opt %s -p debug --print-between-passes | filecheck %s --check-prefix=BETWEEN
// RUN: relax-xdsl-opt %s -p default --time-passes 2>&1 >/dev/null | filecheck %s --check-prefix=TIME
// RUN: relax-xdsl-opt %s -p default | filecheck %s --check-prefix=DEFAULT
// RUN: relax-xdsl-opt %s -p fast | filecheck %s --check-prefix=DEFAULT
// RUN: relax-xdsl-opt %s -p baseline | relax-xdsl-opt | filecheck %s --check-prefix=BASELINE

builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %w: !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, m], f32> {
    %0 = relax.exp %x : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    %1 = relax.matmul %0, %w : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4, m], f32>) -> !relax.tensor<[n, m], f32>
    %2 = relax.relu %1 : (!relax.tensor<[n, m], f32>) -> !relax.tensor<[n, m], f32>
    relax.return %2 : !relax.tensor<[n, m], f32>
  }
}

// --print-ir-after-all: the IR after each pass of the named pipeline, on stderr.
// ALL:      // -----// IR after legalize //----- //
// ALL:        %0 = relax.call_tir @exp(%x)
// ALL:        tir.prim_func @exp
// ALL:      // -----// IR after lower-tir //----- //
// ALL:        relax.function @main
// ALL:        func.func @exp(%x: memref<?x4xf32>
// ALL:      // -----// IR after lower-graph //----- //
// ALL-NOT:  relax.function
// ALL:        func.func @main(%x: memref<?x4xf32>, %w: memref<4x?xf32>) -> memref<?x?xf32>
// ALL:      // -----// IR after schedule-loops //----- //
// ALL:        {relax.min_work = 32768 : i64, relax.serial_copy}
// ALL-NOT:  IR after

// --print-ir-after=PASS prints each run of PASS (here the partial legalize
// and the pipeline's own), in xDSL's generic form with --print-op-generic.
// AFTER:      // -----// IR after legalize{ops="relu"} //----- //
// AFTER:      "relax.exp"(%x)
// AFTER:      "relax.matmul"(%0, %w)
// AFTER:      "relax.call_tir"(%1) <{callee = @relu}>
// AFTER:      // -----// IR after legalize //----- //
// AFTER:      "relax.call_tir"(%x) <{callee = @exp}>
// AFTER:      "relax.call_tir"(%0, %w) <{callee = @matmul}>
// AFTER-NOT:  IR after

// xDSL's --print-between-passes works with pipeline names (stdout, between passes only).
// BETWEEN:      IR after legalize:
// BETWEEN-NEXT: builtin.module {
// BETWEEN:      IR after lower-tir:
// BETWEEN-NEXT: builtin.module {
// BETWEEN:      IR after lower-graph:
// BETWEEN-NOT:  IR after
// BETWEEN:      func.func @main

// --time-passes: one row per pass of the expanded pipeline, then the total.
// TIME:      pass {{ +}}ms {{ +}}%
// TIME-NEXT: fold-constants {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: fold-batch-norm {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: convert-layout {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: simplify-layout {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: cse {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: expand-power {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: recognize-ops {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: recognize-attention {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: combine-parallel-matmul {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: offload {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: annotate-op-pattern {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: fuse-ops {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: fuse-tir {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: legalize {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: auto-schedule {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: lower-tir {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: fuse-row-loops {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: lower-graph {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: unroll-short-loops {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: canonicalize-ops {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: cse {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: collapse-parallel {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: hoist-loop-invariants {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: schedule-loops {{ +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]}}
// TIME-NEXT: total {{ +[0-9]+\.[0-9]+ +100\.0}}

// default (and fast, its old name): the matmul goes to BLAS, the rest to generated loops.
// DEFAULT-NOT: {{relax\.function|relax\.call_tir|lib\.call|tir\.prim_func}}
// DEFAULT:     func.func @main
// DEFAULT:     func.call @exp(
// DEFAULT:     func.call @rx_blas_matmul_2x2(
// DEFAULT:     func.call @relu(
// DEFAULT-NOT: {{relax\.function|relax\.call_tir|lib\.call|tir\.prim_func}}
// DEFAULT:     func.func private @rx_blas_matmul_2x2(

// baseline: every op its own generated kernel, lowered and cleaned up; the output parses back.
// BASELINE-NOT: {{relax\.function|relax\.call_tir|lib\.call|tir\.prim_func}}
// BASELINE:     func.func @main
// BASELINE:     func.call @exp(
// BASELINE:     func.call @matmul(
// BASELINE:     func.call @relu(
// BASELINE-NOT: {{relax\.function|relax\.call_tir|lib\.call|tir\.prim_func}}
