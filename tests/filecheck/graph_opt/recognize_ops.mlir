// RUN: relax-xdsl-opt %s -p recognize-ops,dce | filecheck %s

// Exported written-out forms: GPT-2's tanh GELU (after expand-power), a
// GELU through erf on a bias add (torch.onnx below opset 20), Llama's
// RMSNorm with its weight (dynamo's 1 / sqrt) and LayerNorm as
// ReduceMean / Sub / Pow / ReduceMean / Add / Sqrt / Div with its scale
// and shift (below opset 17). Each becomes one op; what is left is dead.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 8], f32>, %h: !relax.tensor<[n, 3, 8], f32>) -> tuple<!relax.tensor<[n, 8], f32>, !relax.tensor<[n, 8], f32>, !relax.tensor<[n, 3, 8], f32>, !relax.tensor<[n, 3, 8], f32>> {
    %half = relax.constant dense<5.000000e-01> : tensor<f32>
    %one = relax.constant dense<1.000000e+00> : tensor<f32>
    %cubic = relax.constant dense<4.471500e-02> : tensor<f32>
    %scale = relax.constant dense<7.978846e-01> : tensor<f32>
    %a = relax.multiply %x, %half : (!relax.tensor<[n, 8], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 8], f32>
    %sq = relax.multiply %x, %x : (!relax.tensor<[n, 8], f32>, !relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32>
    %cube = relax.multiply %sq, %x : (!relax.tensor<[n, 8], f32>, !relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32>
    %c3 = relax.multiply %cube, %cubic : (!relax.tensor<[n, 8], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 8], f32>
    %in = relax.add %x, %c3 : (!relax.tensor<[n, 8], f32>, !relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32>
    %z = relax.multiply %in, %scale : (!relax.tensor<[n, 8], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 8], f32>
    %t = relax.tanh %z : (!relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32>
    %t1 = relax.add %t, %one : (!relax.tensor<[n, 8], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 8], f32>
    %g1 = relax.multiply %a, %t1 : (!relax.tensor<[n, 8], f32>, !relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32>

    %bias = relax.constant dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]> : tensor<8xf32>
    %y = relax.add %x, %bias : (!relax.tensor<[n, 8], f32>, !relax.tensor<[8], f32>) -> !relax.tensor<[n, 8], f32>
    %sqrt2 = relax.constant dense<1.41421354> : tensor<f32>
    %d = relax.divide %y, %sqrt2 : (!relax.tensor<[n, 8], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 8], f32>
    %e = relax.erf %d : (!relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32>
    %e1 = relax.add %e, %one : (!relax.tensor<[n, 8], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 8], f32>
    %ye = relax.multiply %y, %e1 : (!relax.tensor<[n, 8], f32>, !relax.tensor<[n, 8], f32>) -> !relax.tensor<[n, 8], f32>
    %g2 = relax.multiply %ye, %half : (!relax.tensor<[n, 8], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 8], f32>

    %eps = relax.constant dense<9.99999997E-7> : tensor<f32>
    %w = relax.constant dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]> : tensor<8xf32>
    %hh = relax.multiply %h, %h : (!relax.tensor<[n, 3, 8], f32>, !relax.tensor<[n, 3, 8], f32>) -> !relax.tensor<[n, 3, 8], f32>
    %ms = relax.mean %hh {axis = array<i64: 2>, keepdims = true} : (!relax.tensor<[n, 3, 8], f32>) -> !relax.tensor<[n, 3, 1], f32>
    %mse = relax.add %ms, %eps : (!relax.tensor<[n, 3, 1], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 3, 1], f32>
    %root = relax.sqrt %mse : (!relax.tensor<[n, 3, 1], f32>) -> !relax.tensor<[n, 3, 1], f32>
    %inv = relax.divide %one, %root : (!relax.tensor<[], f32>, !relax.tensor<[n, 3, 1], f32>) -> !relax.tensor<[n, 3, 1], f32>
    %hn = relax.multiply %h, %inv : (!relax.tensor<[n, 3, 8], f32>, !relax.tensor<[n, 3, 1], f32>) -> !relax.tensor<[n, 3, 8], f32>
    %rms = relax.multiply %w, %hn : (!relax.tensor<[8], f32>, !relax.tensor<[n, 3, 8], f32>) -> !relax.tensor<[n, 3, 8], f32>

    %two = relax.constant dense<2.0> : tensor<f32>
    %mu = relax.mean %h {axis = array<i64: -1>, keepdims = true} : (!relax.tensor<[n, 3, 8], f32>) -> !relax.tensor<[n, 3, 1], f32>
    %dc = relax.subtract %h, %mu : (!relax.tensor<[n, 3, 8], f32>, !relax.tensor<[n, 3, 1], f32>) -> !relax.tensor<[n, 3, 8], f32>
    %p = relax.power %dc, %two : (!relax.tensor<[n, 3, 8], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 3, 8], f32>
    %var = relax.mean %p {axis = array<i64: -1>, keepdims = true} : (!relax.tensor<[n, 3, 8], f32>) -> !relax.tensor<[n, 3, 1], f32>
    %ve = relax.add %var, %eps : (!relax.tensor<[n, 3, 1], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 3, 1], f32>
    %sd = relax.sqrt %ve : (!relax.tensor<[n, 3, 1], f32>) -> !relax.tensor<[n, 3, 1], f32>
    %nrm = relax.divide %dc, %sd : (!relax.tensor<[n, 3, 8], f32>, !relax.tensor<[n, 3, 1], f32>) -> !relax.tensor<[n, 3, 8], f32>
    %sc = relax.multiply %nrm, %w : (!relax.tensor<[n, 3, 8], f32>, !relax.tensor<[8], f32>) -> !relax.tensor<[n, 3, 8], f32>
    %ln = relax.add %sc, %bias : (!relax.tensor<[n, 3, 8], f32>, !relax.tensor<[8], f32>) -> !relax.tensor<[n, 3, 8], f32>
    %r = relax.tuple %g1, %g2, %rms, %ln : (!relax.tensor<[n, 8], f32>, !relax.tensor<[n, 8], f32>, !relax.tensor<[n, 3, 8], f32>, !relax.tensor<[n, 3, 8], f32>)
    relax.return %r : tuple<!relax.tensor<[n, 8], f32>, !relax.tensor<[n, 8], f32>, !relax.tensor<[n, 3, 8], f32>, !relax.tensor<[n, 3, 8], f32>>
  }
}

// CHECK:      %[[G1:.*]] = relax.gelu_tanh %x
// CHECK:      %[[Y:.*]] = relax.add %x, %[[BIAS:.*]] :
// CHECK-NEXT: %[[G2:.*]] = relax.gelu %[[Y]]
// CHECK:      %[[RMS:.*]] = relax.rms_norm %h, %[[W:[^ ]*]] {axes = array<i64: 2>, epsilon = 9.99999997{{[0-9]*}}e-07 : f64}
// CHECK:      %[[LN:.*]] = relax.layer_norm %h, %[[W]], %[[BIAS]] {axes = array<i64: 2>, epsilon = 9.99999997{{[0-9]*}}e-07 : f64}
// CHECK-NEXT: %{{.*}} = relax.tuple %[[G1]], %[[G2]], %[[RMS]], %[[LN]]
// CHECK-NOT:  relax.multiply
// CHECK-NOT:  relax.mean
// CHECK-NOT:  relax.sqrt
