"""`relax-xdsl-opt`: xDSL's opt driver with this project's dialects, passes,
named pipelines and targets registered.

    relax-xdsl-opt model.mlir -p legalize,lower-tir
    relax-xdsl-opt model.mlir -p default -t c          # the generated C
    relax-xdsl-opt model.mlir -p default --print-between-passes --time-passes

`-p` takes pass names, pass options (`legalize{ops=matmul}`) and pipeline
names from relax_xdsl.passes.pipelines (`default`, `debug`). Errors print a
diagnostic with line and column and exit 1, without a Python traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import DiagnosticException, ParseError
from xdsl.xdsl_opt_main import xDSLOptMain

from relax_xdsl.errors import RelaxError


def _emit_c(module: ModuleOp, out: IO[str]) -> None:
    from relax_xdsl.backend.c_emitter import emit_c

    out.write(emit_c(module))


class RelaxOptMain(xDSLOptMain):
    def register_all_dialects(self) -> None:
        super().register_all_dialects()
        from relax_xdsl.ir import project_dialects

        for name, factory in project_dialects().items():
            if name in self.ctx.registered_dialect_names:
                continue
            self.ctx.register_dialect(name, factory)

    def register_all_passes(self) -> None:
        super().register_all_passes()
        from relax_xdsl.passes import get_all_passes

        for name, factory in get_all_passes().items():
            self.register_pass(name, factory)

    def register_all_targets(self) -> None:
        super().register_all_targets()
        self.available_targets["c"] = _emit_c

    def setup_pipeline(self) -> None:
        from relax_xdsl.passes.pipelines import expand

        self.args.passes = expand(self.args.passes) if self.args.passes else self.args.passes
        super().setup_pipeline()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        RelaxOptMain("relax_xdsl modular optimizer driver", args=argv).run()
    except (ParseError, DiagnosticException, RelaxError, ValueError) as err:
        print(f"relax-xdsl-opt: error: {err}", file=sys.stderr)
        return 1
    except FileNotFoundError as err:
        print(f"relax-xdsl-opt: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
