// RUN: relax-xdsl-opt %s -p expand-power | filecheck %s

// power by a constant 1, 2, 3 or 4 (one value, broadcast) becomes
// multiplies and the exponent constant goes; a 0.5, a non-uniform exponent,
// a 6 and an exponent that broadcasts x to a bigger shape keep the power.
builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 4], f32>, %i: !relax.tensor<[n], i32>) -> tuple<!relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n], i32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[3, n, 4], f32>> {
    %two = relax.constant dense<2.0> : tensor<f32>
    %0 = relax.power %x, %two : (!relax.tensor<[n, 4], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 4], f32>
    %three = relax.constant dense<[3.0, 3.0, 3.0, 3.0]> : tensor<4xf32>
    %1 = relax.power %x, %three : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4], f32>) -> !relax.tensor<[n, 4], f32>
    %one = relax.constant dense<1.0> : tensor<f32>
    %2 = relax.power %x, %one : (!relax.tensor<[n, 4], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 4], f32>
    %four = relax.constant dense<4> : tensor<i32>
    %3 = relax.power %i, %four : (!relax.tensor<[n], i32>, !relax.tensor<[], i32>) -> !relax.tensor<[n], i32>
    %half = relax.constant dense<0.5> : tensor<f32>
    %4 = relax.power %x, %half : (!relax.tensor<[n, 4], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 4], f32>
    %mixed = relax.constant dense<[2.0, 3.0, 2.0, 2.0]> : tensor<4xf32>
    %5 = relax.power %x, %mixed : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4], f32>) -> !relax.tensor<[n, 4], f32>
    %six = relax.constant dense<6.0> : tensor<f32>
    %6 = relax.power %x, %six : (!relax.tensor<[n, 4], f32>, !relax.tensor<[], f32>) -> !relax.tensor<[n, 4], f32>
    %wide = relax.constant dense<2.0> : tensor<3x1x1xf32>
    %7 = relax.power %x, %wide : (!relax.tensor<[n, 4], f32>, !relax.tensor<[3, 1, 1], f32>) -> !relax.tensor<[3, n, 4], f32>
    %8 = relax.tuple %0, %1, %2, %3, %4, %5, %6, %7 : (!relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n], i32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[3, n, 4], f32>)
    relax.return %8 : tuple<!relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n], i32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[n, 4], f32>, !relax.tensor<[3, n, 4], f32>>
  }
}

// CHECK-NOT:  dense<2.000000e+00> : tensor<f32>
// CHECK-NOT:  dense<3.000000e+00>
// CHECK:      %0 = relax.multiply %x, %x
// CHECK-NEXT: %1 = relax.multiply %x, %x
// CHECK-NEXT: %2 = relax.multiply %1, %x
// CHECK-NEXT: %3 = relax.multiply %i, %i
// CHECK-NEXT: %4 = relax.multiply %3, %3
// CHECK:      relax.power %x, %half
// CHECK:      relax.power %x, %mixed
// CHECK:      relax.power %x, %six
// CHECK:      relax.power %x, %wide
// CHECK:      relax.tuple %0, %2, %x, %4,
