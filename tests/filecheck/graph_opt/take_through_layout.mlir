// RUN: relax-xdsl-opt %s -p simplify-layout | filecheck %s

// torch's nn.MultiheadAttention splits its packed q, k, v projection as a
// reshape (768 -> 3 x 256), a permute_dims bringing the 3 first, a squeeze
// and one take per projection. Each take of a constant index moves through
// the squeeze (a reshape-like op keeping the axis), the permute_dims (the
// take of the axis it came from) and the reshape (whose axis splits 768: a
// strided_slice of 256 columns); the permute_dims left, which moves only an
// axis of extent 1, is a reshape, and the reshapes cancel. No copy of the
// whole projection is left.
builtin.module {
  relax.function @main(%x: !relax.tensor<[s, n, 768], f32>) -> tuple<!relax.tensor<[s, n, 256], f32>, !relax.tensor<[s, n, 256], f32>> {
    %0 = relax.reshape %x {shape = #relax.dims<[1, s, n, 3, 256]>} : (!relax.tensor<[s, n, 768], f32>) -> !relax.tensor<[1, s, n, 3, 256], f32>
    %1 = relax.permute_dims %0 {axes = array<i64: 3, 1, 2, 0, 4>} : (!relax.tensor<[1, s, n, 3, 256], f32>) -> !relax.tensor<[3, s, n, 1, 256], f32>
    %2 = relax.squeeze %1 {axis = array<i64: 3>} : (!relax.tensor<[3, s, n, 1, 256], f32>) -> !relax.tensor<[3, s, n, 256], f32>
    %i = relax.constant dense<0> : tensor<i64>
    %j = relax.constant dense<2> : tensor<i64>
    %3 = relax.take %2, %i {axis = 0 : i64} : (!relax.tensor<[3, s, n, 256], f32>, !relax.tensor<[], i64>) -> !relax.tensor<[s, n, 256], f32>
    %4 = relax.take %2, %j {axis = 0 : i64} : (!relax.tensor<[3, s, n, 256], f32>, !relax.tensor<[], i64>) -> !relax.tensor<[s, n, 256], f32>
    %5 = relax.tuple %3, %4 : (!relax.tensor<[s, n, 256], f32>, !relax.tensor<[s, n, 256], f32>)
    relax.return %5 : tuple<!relax.tensor<[s, n, 256], f32>, !relax.tensor<[s, n, 256], f32>>
  }
}

// CHECK:      %0 = relax.strided_slice %x {axes = array<i64: 2>, begin = #relax.dims<[0]>, end = #relax.dims<[256]>} : (!relax.tensor<[s, n, 768], f32>) -> !relax.tensor<[s, n, 256], f32>
// CHECK-NEXT: %1 = relax.strided_slice %x {axes = array<i64: 2>, begin = #relax.dims<[512]>, end = #relax.dims<[768]>} : (!relax.tensor<[s, n, 768], f32>) -> !relax.tensor<[s, n, 256], f32>
// CHECK-NEXT: %2 = relax.tuple %0, %1
// CHECK-NEXT: relax.return %2
// CHECK-NOT:  relax.take
// CHECK-NOT:  relax.squeeze
