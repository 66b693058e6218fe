"""`relax-xdsl-opt`: xDSL's opt driver with this project's dialects, passes,
named pipelines and targets registered.

    relax-xdsl-opt model.mlir -p legalize,lower-tir          # passes, with options: "legalize{ops=matmul}"
    relax-xdsl-opt model.mlir -p default -t c                # the generated C
    relax-xdsl-opt model.mlir -p fast -t dot | dot -Tsvg     # Graphviz view of the graph functions
    relax-xdsl-opt model.mlir -p fast --print-ir-after=fuse-ops --time-passes
    relax-xdsl-opt model.mlir -p debug --print-ir-after-all  # IR after each pass, on stderr

`-p` takes pass names, pass options and pipeline names from
relax_xdsl.passes.pipelines (`default`, `debug`, `fast`). Targets: `mlir`
(default), `c`, `dot`, and xDSL's. Inspection: `--print-ir-after=PASS`
(repeatable) and `--print-ir-after-all` print the IR after those passes to
stderr; `--time-passes` prints a table of each pass's time to stderr;
xDSL's `--print-between-passes` and `--verify-diagnostics` work too. Errors
(malformed input, failing verifier, unknown pass or option, missing file)
print a diagnostic with line and column where there is one, and exit 1,
without a Python traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import IO

from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline
from xdsl.printer import Printer
from xdsl.utils.exceptions import ArgSpecParseError, DiagnosticException, ParseError, PassFailedException
from xdsl.xdsl_opt_main import xDSLOptMain

from relax_xdsl.errors import RelaxError


def _emit_c(module: ModuleOp, out: IO[str]) -> None:
    from relax_xdsl.backend.c_emitter import emit_c

    out.write(emit_c(module))


def _emit_dot(module: ModuleOp, out: IO[str]) -> None:
    from relax_xdsl.backend.dot import emit_dot

    emit_dot(module, out)


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

    def register_all_frontends(self) -> None:
        """`.mlir` through the locating parser: a failing verifier names the op's line and column."""
        super().register_all_frontends()
        from relax_xdsl.ir import LocatingParser

        def parse_mlir(io: IO[bytes]) -> ModuleOp:
            data = io.read()
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            parser = LocatingParser(self.ctx, text, self.get_input_name())
            module = parser.parse_module(not self.args.no_implicit_module)
            if not self.args.disable_verify:
                parser.verify(module)
            return module

        self.available_frontends["mlir"] = parse_mlir

    def register_all_targets(self) -> None:
        super().register_all_targets()
        self.available_targets["c"] = _emit_c
        self.available_targets["dot"] = _emit_dot

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument("--print-ir-after", action="append", default=[], metavar="PASS",
                                help="print the IR to stderr after each run of PASS (repeatable)")
        arg_parser.add_argument("--print-ir-after-all", action="store_true",
                                help="print the IR to stderr after every pass")

    def setup_pipeline(self) -> None:
        """Our callback instead of xDSL's: verification between passes,
        --print-ir-after(-all), xDSL's --print-between-passes, and
        --time-passes as a table on stderr."""
        from relax_xdsl.passes.pipelines import expand

        args = self.args
        spec = expand(args.passes) if args.passes else args.passes
        unknown = [p for p in args.print_ir_after if p not in self.available_passes]
        if unknown:
            raise RelaxError(f"--print-ir-after: unknown pass {unknown[0]!r}")
        self.timings: list[tuple[str, float]] = []
        started = [time.perf_counter()]

        def callback(prev: ModulePass | None, module: ModuleOp, nxt: ModulePass | None) -> None:
            if prev is not None:
                self.timings.append((str(prev.pipeline_pass_spec()), time.perf_counter() - started[0]))
            if not args.disable_verify:
                module.verify()
            if prev is not None and (args.print_ir_after_all or prev.name in args.print_ir_after):
                print(f"// -----// IR after {prev.pipeline_pass_spec()} //----- //", file=sys.stderr)
                Printer(stream=sys.stderr).print_op(module)
                print("\n", file=sys.stderr)
            if prev is not None and nxt is not None and args.print_between_passes:
                print(f"IR after {prev.name}:")
                Printer(stream=sys.stdout).print_op(module)
                print("\n\n\n")
            started[0] = time.perf_counter()

        self.pipeline = PassPipeline.parse_spec(self.available_passes, spec, callback)

    def apply_passes(self, prog: ModuleOp) -> None:
        t0 = time.perf_counter()
        super().apply_passes(prog)
        if self.args.time_passes:
            total = time.perf_counter() - t0
            print(f"{'pass':<36} {'ms':>10} {'%':>6}", file=sys.stderr)
            for name, secs in self.timings:
                print(f"{name:<36} {secs * 1e3:10.2f} {100 * secs / total if total else 0:6.1f}", file=sys.stderr)
            print(f"{'total':<36} {total * 1e3:10.2f} {100.0:6.1f}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        RelaxOptMain("relax_xdsl modular optimizer driver", args=argv).run()
    except (ParseError, DiagnosticException, ArgSpecParseError, PassFailedException, RelaxError, ValueError, KeyError,
            TypeError, FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as err:
        msg = str(err).strip() or type(err).__name__
        print(f"relax-xdsl-opt: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
