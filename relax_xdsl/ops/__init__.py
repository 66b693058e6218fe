"""The operator set, one family per module. Importing this package
registers every built-in graph op."""

from relax_xdsl.ops import (
    elementwise,  # noqa: F401
    nn,  # noqa: F401
)
