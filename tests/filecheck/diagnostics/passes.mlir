// RUN: relax-xdsl-opt %s -p lower-graph --verify-diagnostics | filecheck %s --check-prefix=ORDER
// RUN: (relax-xdsl-opt %s -p "legalize{ops=exp},lower-tir,lower-graph"; echo "exit $?") 2>&1 | filecheck %s --check-prefix=PARTIAL
// RUN: (relax-xdsl-opt %s -p "legalize{ops=nothing}"; echo "exit $?") 2>&1 | filecheck %s --check-prefix=NOOP
// RUN: (relax-xdsl-opt %s -p "offload{lib=nope}"; echo "exit $?") 2>&1 | filecheck %s --check-prefix=NOLIB
// RUN: (relax-xdsl-opt %s -p "legalize{frob=1}"; echo "exit $?") 2>&1 | filecheck %s --check-prefix=OPTION
// RUN: (relax-xdsl-opt %s -p "legalize,nonsense"; echo "exit $?") 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: (relax-xdsl-opt %s -p "legalize{ops=exp"; echo "exit $?") 2>&1 | filecheck %s --check-prefix=SYNTAX
// RUN: (relax-xdsl-opt %s -t c; echo "exit $?") 2>&1 | filecheck %s --check-prefix=TARGET

// A pass that rejects its input names itself; --verify-diagnostics prints
// the failure and exits 0, without it the failure is an error (exit 1).

builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32> {
    %0 = relax.exp %x : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    %1 = relax.relu %0 : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    relax.return %1 : !relax.tensor<[n, 4], f32>
  }
}

// ORDER:     pass lower-graph: @main: relax.exp is not legalized; run the legalize pass first
// ORDER-NOT: relax-xdsl-opt: error

// PARTIAL:      relax-xdsl-opt: error: pass lower-graph: @main: relax.relu is not legalized; run the legalize pass first
// PARTIAL-NEXT: exit 1

// NOOP:      relax-xdsl-opt: error: legalize: no graph op named nothing
// NOOP-NEXT: exit 1

// NOLIB:      relax-xdsl-opt: error: offload: no patterns for library 'nope'; known: blas
// NOLIB-NEXT: exit 1

// OPTION:      relax-xdsl-opt: error: -p: pass 'legalize': {{.*}}"frob"{{.*}} (its options: ops)
// OPTION-NEXT: exit 1

// UNKNOWN:      relax-xdsl-opt: error: -p: unknown pass 'nonsense'; this project's passes: legalize, offload, {{.*}}; pipelines: default, fast, baseline, debug
// UNKNOWN-NEXT: exit 1

// SYNTAX:      relax-xdsl-opt: error: Error parsing pass pipeline specification:
// SYNTAX-NEXT: pass-pipeline:1:{{[0-9]+}}
// SYNTAX:      exit 1

// TARGET:      relax-xdsl-opt: error: the C target cannot emit relax.function at module level (lower the module first)
// TARGET-NEXT: exit 1
