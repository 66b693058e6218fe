// RUN: relax-xdsl-opt %s | relax-xdsl-opt | filecheck %s

builtin.module {
  relax.function @main(%x: !relax.tensor<[n, 2*n + 1], f32>, %w: !relax.tensor<[2*n + 1, 4], f32>) -> tuple<!relax.tensor<[n, 4], f32>, !relax.shape<[k, 4]>> {
    %0 = relax.dataflow -> (!relax.tensor<[n, 4], f32>) {
      %1 = relax.matmul %x, %w : (!relax.tensor<[n, 2*n + 1], f32>, !relax.tensor<[2*n + 1, 4], f32>) -> !relax.tensor<[n, 4], f32>
      %2 = relax.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
      %3 = relax.add %1, %2 : (!relax.tensor<[n, 4], f32>, !relax.tensor<[4], f32>) -> !relax.tensor<[n, 4], f32>
      %4 = relax.softmax %3 {axis = 1 : i64} : (!relax.tensor<[n, 4], f32>) -> !relax.tensor<[n, 4], f32>
      relax.output %4 : !relax.tensor<[n, 4], f32>
    }
    %5 = relax.match_cast %0 : !relax.tensor<[n, 4], f32> -> !relax.tensor<[k, 4], f32>
    %6 = relax.shape_of %5 : !relax.tensor<[k, 4], f32> -> !relax.shape<[k, 4]>
    %7 = relax.tuple %0, %6 : (!relax.tensor<[n, 4], f32>, !relax.shape<[k, 4]>)
    %8 = relax.get_item %7[0] : tuple<!relax.tensor<[n, 4], f32>, !relax.shape<[k, 4]>>
    %9 = relax.tuple %8, %6 : (!relax.tensor<[n, 4], f32>, !relax.shape<[k, 4]>)
    relax.return %9 : tuple<!relax.tensor<[n, 4], f32>, !relax.shape<[k, 4]>>
  }
}

// CHECK:      relax.function @main(%x: !relax.tensor<[n, 2*n + 1], f32>, %w: !relax.tensor<[2*n + 1, 4], f32>)
// CHECK:        relax.dataflow -> (!relax.tensor<[n, 4], f32>) {
// CHECK-NEXT:     relax.matmul %x, %w
// CHECK:          relax.constant dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]> : tensor<4xf32>
// CHECK:          relax.softmax %{{.*}} {axis = 1 : i64}
// CHECK:          relax.output
// CHECK:        relax.match_cast %{{.*}} : !relax.tensor<[n, 4], f32> -> !relax.tensor<[k, 4], f32>
// CHECK:        relax.shape_of
// CHECK:        relax.get_item %{{.*}}[0]
// CHECK:        relax.return
