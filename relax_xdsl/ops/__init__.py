"""The operator set, one family per module. Importing this package
registers every built-in graph op."""

from relax_xdsl.ops import (
    attention,  # noqa: F401
    bitcast,  # noqa: F401
    creation,  # noqa: F401
    data_dependent,  # noqa: F401
    deform_conv,  # noqa: F401
    elementwise,  # noqa: F401
    indexing,  # noqa: F401
    layout,  # noqa: F401
    linalg,  # noqa: F401
    manipulate,  # noqa: F401
    math,  # noqa: F401
    nn,  # noqa: F401
    nn_extra,  # noqa: F401
    nn_index,  # noqa: F401
    reduction,  # noqa: F401
    roi,  # noqa: F401
    sampling,  # noqa: F401
)
