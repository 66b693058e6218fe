// RUN: relax-xdsl-opt %s -p legalize | filecheck %s
// RUN: relax-xdsl-opt %s -p "legalize{ops=exp}" | filecheck %s --check-prefix=PARTIAL

builtin.module {
  relax.function @main(%a: !relax.tensor<[n, 4], f32>, %b: !relax.tensor<[m, 4], f32>) -> !relax.tensor<[m + n, 4], f32> {
    %0 = relax.exp %a : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
    %1 = relax.exp %b : (!relax.tensor<[m, 4], f32>) -> !relax.tensor<[m, 4], f32>
    %2 = relax.concat %0, %1 : (!relax.tensor<[n, 4], f32>, !relax.tensor<[m, 4], f32>) -> !relax.tensor<[m + n, 4], f32>
    relax.return %2 : !relax.tensor<[m + n, 4], f32>
  }
}

// One program per op and shape signature: both exps share @exp.
// CHECK:      %0 = relax.call_tir @exp(%a) : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
// CHECK-NEXT: %1 = relax.call_tir @exp(%b) : (!relax.tensor<[m, 4], f32>) -> !relax.tensor<[m, 4], f32>
// CHECK-NEXT: %2 = relax.call_tir @concat(%0, %1)
// CHECK:      tir.prim_func @exp(%x: !tir.buffer<[n, 4], f32>, %out: !tir.buffer<[n, 4], f32>) attributes {relax.op = "exp"} {
// CHECK:        tir.compute %out
// CHECK:          math.exp
// CHECK:      tir.prim_func @concat(%tensors0: !tir.buffer<[n, 4], f32>, %tensors1: !tir.buffer<[m, 4], f32>, %out: !tir.buffer<[m + n, 4], f32>)
// CHECK:        scf.if
// CHECK-NOT:  tir.prim_func

// PARTIAL:     relax.call_tir @exp(%a)
// PARTIAL:     relax.call_tir @exp(%b)
// PARTIAL:     relax.concat
// PARTIAL-NOT: tir.prim_func @concat
