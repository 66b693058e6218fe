// RUN: relax-xdsl-opt %s -p fold-constants | filecheck %s

// An exported Gemm's transB weight made by ConstantOfShape: the fill and
// its transpose fold to one splat constant, printed (and stored) as one
// value; an elementwise op of a splat and a scalar folds to a splat too.
// The reduction of a splat stays an op: folding it would expand the splat.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4096], f32>) -> tuple<!relax.tensor<[n, 1000], f32>, !relax.tensor<[1], f32>> {
    %w = relax.full {shape = #relax.dims<[1000, 4096]>, fill_value = 0.5 : f64} : () -> !relax.tensor<[1000, 4096], f32>
    %wt = relax.permute_dims %w : (!relax.tensor<[1000, 4096], f32>) -> !relax.tensor<[4096, 1000], f32>
    %y = relax.matmul %x, %wt : (!relax.tensor<[n, 4096], f32>, !relax.tensor<[4096, 1000], f32>) -> !relax.tensor<[n, 1000], f32>
    %b = relax.full {shape = #relax.dims<[8388608]>, fill_value = 2.0 : f64} : () -> !relax.tensor<[8388608], f32>
    %three = relax.constant dense<3.0> : tensor<f32>
    %b3 = relax.multiply %b, %three : (!relax.tensor<[8388608], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[8388608], f32>
    %s = relax.sum %b3 {axis = array<i64: 0>, keepdims = true} : (!relax.tensor<[8388608], f32>) -> !relax.tensor<[1], f32>
    %r = relax.tuple %y, %s : (!relax.tensor<[n, 1000], f32>, !relax.tensor<[1], f32>)
    relax.return %r : tuple<!relax.tensor<[n, 1000], f32>, !relax.tensor<[1], f32>>
  }
}

// CHECK:      %[[W:.*]] = relax.constant dense<5.000000e-01> : tensor<4096x1000xf32>
// CHECK-NEXT: %{{.*}} = relax.matmul %x, %[[W]]
// CHECK:      %[[B:.*]] = relax.constant dense<6.000000e+00> : tensor<8388608xf32>
// CHECK-NEXT: %{{.*}} = relax.sum %[[B]]
// CHECK-NOT:  relax.full
// CHECK-NOT:  relax.permute_dims
// CHECK-NOT:  relax.multiply
