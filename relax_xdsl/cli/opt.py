"""`relax-xdsl-opt`: xDSL's opt driver with this project's dialects, passes,
named pipelines and targets registered.

    relax-xdsl-opt model.mlir -p legalize,lower-tir          # passes, with options: "legalize{ops=matmul}"
    relax-xdsl-opt model.mlir -p default -t c                # the generated C (optimizing pipeline)
    relax-xdsl-opt model.mlir -p default -t dot | dot -Tsvg  # Graphviz view of the graph functions
    relax-xdsl-opt model.mlir -p default --print-ir-after=fuse-ops --time-passes
    relax-xdsl-opt model.mlir -p debug --print-ir-after-all  # IR after each pass, on stderr

Passes (`-p`): pass names with options (`offload{lib=blas}`), xDSL's
upstream passes (`canonicalize`, `cse`, ...) and the pipeline names of
relax_xdsl.passes.pipelines (`default`: optimizing, BLAS and fusion; `fast`:
the same; `baseline`: unoptimised, every op its own kernel; `debug`: baseline
without clean-ups), freely mixed: `-p "legalize{ops=matmul},baseline"`.

Targets (`-t`): only those that work on this project's IR (TARGETS below);
xDSL's others (assembly, LLVM, WGSL, ...) expect their own dialects and are
hidden, so naming one is a usage error.

Inspection (output of the module itself stays on stdout):
  --print-ir-after=PASS    IR after each run of PASS, to stderr (repeatable;
                           PASS is a pass name, with or without options)
  --print-ir-after-all     IR after every pass, to stderr
  --time-passes            table of each pass's wall time, to stderr
  --print-between-passes   xDSL's: IR between passes, to stdout
  --print-op-generic, --print-no-properties, --print-debuginfo
                           xDSL's printing options; they apply to the
                           --print-ir-after(-all) output as well
  --verify-diagnostics     xDSL's: print a verifier or pass failure and exit 0
  --parsing-diagnostics    xDSL's: print a parse error and exit 0
  --split-input-file       xDSL's: run each `// -----` chunk on its own
                           (diagnostics give lines of the whole file)
  --disable-verify         no verification after parsing or between passes

Errors (malformed input, unknown op, bad dim expression, failing verifier,
unknown pass or pass option, a pass rejecting its input, missing or
unreadable file) print one diagnostic, `relax-xdsl-opt: error: FILE:LINE:COL
...` where the input has a position, and exit 1 without a Python traceback.

A pipeline still running 2 s after it began prints each pass on stderr as it
ends (relax_xdsl/cli/compile_progress.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
import time
from collections.abc import Sequence
from typing import IO

from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline
from xdsl.printer import Printer
from xdsl.utils.arg_spec import parse_pipeline
from xdsl.utils.exceptions import (
    ArgSpecParseError,
    DiagnosticException,
    ParseError,
    PassFailedException,
    VerifyException,
)
from xdsl.xdsl_opt_main import xDSLOptMain

from relax_xdsl.cli.compile_progress import CompileProgress
from relax_xdsl.cli.version import version_line
from relax_xdsl.errors import IRParseError, RelaxError
from relax_xdsl.ir import LocatingParser

TARGETS: dict[str, str] = {
    "mlir": "textual IR (the default; parses back)",
    "c": "the generated C of a lowered module (after lower-graph)",
    "dot": "Graphviz view of the graph functions: ops as nodes, values as edges labelled `[n, 784] f32`",
}
"""The `-t` targets kept, each checked to work on this project's IR: xDSL's
others (arm-asm, riscv-asm, x86-asm, llvm, wat, wgsl, csl, mps) fail on it
with a traceback or a missing module, or print nothing."""

USAGE = "%(prog)s [INPUT.mlir] [-p PASSES] [-t TARGET] [-o OUTPUT_FILE] [options]"


def _emit_c(module: ModuleOp, out: IO[str]) -> None:
    from relax_xdsl.backend.c_emitter import emit_c

    out.write(emit_c(module))


def _emit_dot(module: ModuleOp, out: IO[str]) -> None:
    from relax_xdsl.backend.dot import emit_dot

    emit_dot(module, out)


def _pass_name(item: str) -> str:
    return item.split("{", 1)[0].strip()


def _columns(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows) + 2
    return "\n".join(f"  {name:<{width}}{text}" for name, text in rows)


def usage_notes() -> str:
    """What --help says first: this project's passes (with their options),
    named pipelines and targets, read from the registries when it runs."""
    from relax_xdsl.passes import get_all_passes
    from relax_xdsl.passes.pipelines import PIPELINES, SUMMARIES

    passes = []
    for name, factory in get_all_passes().items():
        options = [f.name.replace("_", "-") for f in dataclasses.fields(factory())]
        passes.append(f"{name}{{{','.join(options)}}}" if options else name)
    head, _, tail = (__doc__ or "").partition("\nPasses (`-p`)")
    tail = tail.split("\nInspection", 1)[1] if "\nInspection" in tail else ""
    return "\n".join([
        head.rstrip(), "",
        "This project's passes (-p NAME or NAME{option=value}; options in braces):",
        textwrap.fill(", ".join(passes), width=100, initial_indent="  ", subsequent_indent="  ",
                      break_on_hyphens=False), "",
        "Named pipelines (-p NAME, mixed freely with passes: -p \"legalize{ops=matmul},NAME\"):",
        _columns([(name, f"({SUMMARIES[name]}) {spec}" if name in SUMMARIES else spec)
                  for name, spec in PIPELINES.items()]), "",
        "Targets (-t; xDSL's other targets do not apply to this IR):",
        _columns(list(TARGETS.items())), "",
        "xDSL's own passes (canonicalize, cse, ...) are listed under -p below.", "",
        "Inspection" + tail.rstrip(),
    ])


class RelaxOptMain(xDSLOptMain):
    _chunk_offset = 0
    version_format = version_line("relax-xdsl-opt").replace("{", "{{").replace("}", "}}")
    progress: CompileProgress | None = None

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
        """`.mlir` through the locating parser: a failing verifier names the
        op's line and column (as a VerifyException, so xDSL's
        --verify-diagnostics sees it)."""
        super().register_all_frontends()

        def parse_mlir(io: IO[bytes]) -> ModuleOp:
            data = io.read()
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            name = self.get_input_name()
            if not text.strip():
                raise RelaxError(f"{name}: the input is empty (expected a builtin.module)")
            parser = LocatingParser(self.ctx, text, name, self._chunk_offset)
            module = parser.parse_module(not self.args.no_implicit_module)
            if not self.args.disable_verify:
                try:
                    parser.verify(module)
                except IRParseError as err:
                    raise VerifyException(str(err)) from None
            return module

        self.available_frontends["mlir"] = parse_mlir

    def parse_chunk(self, chunk: IO[bytes], file_extension: str, start_offset: int = 0) -> ModuleOp | None:
        self._chunk_offset = start_offset
        return super().parse_chunk(chunk, file_extension, start_offset)

    def register_all_targets(self) -> None:
        """Only TARGETS: a hidden one is an unknown target (a usage error)."""
        super().register_all_targets()
        self.available_targets["c"] = _emit_c
        self.available_targets["dot"] = _emit_dot
        self.available_targets = {name: self.available_targets[name] for name in TARGETS}

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        """xDSL's arguments under this project's usage notes (usage_notes)."""
        super().register_all_arguments(arg_parser)
        arg_parser.prog = "relax-xdsl-opt"
        arg_parser.usage = USAGE
        arg_parser.description = usage_notes()
        arg_parser.formatter_class = argparse.RawDescriptionHelpFormatter
        arg_parser._optionals.title = "options (xDSL's generic ones, then this project's)"  # noqa: SLF001
        from relax_xdsl.passes import get_all_passes

        ours = set(get_all_passes())
        upstream = [name for name in self.available_passes if name not in ours]
        arg_parser.add_argument("--print-ir-after", action="append", default=[], metavar="PASS",
                                help="print the IR to stderr after each run of PASS (repeatable)")
        arg_parser.add_argument("--print-ir-after-all", action="store_true",
                                help="print the IR to stderr after every pass")
        for action in arg_parser._actions:  # noqa: SLF001 - retitle xDSL's options for what they do here
            if "--time-passes" in action.option_strings:
                action.help = "print a table of each pass's wall time to stderr"
            elif "--target" in action.option_strings:
                action.help = f"output format: {', '.join(TARGETS)} (see Targets above)"
            elif "--passes" in action.option_strings:
                action.help = ("comma-separated passes and pipelines: this project's (above) and xDSL's: "
                               + ", ".join(upstream))
            elif "--version" in action.option_strings:
                action.help = "print relax_xdsl's version and exit"

    def _printer(self, stream: IO[str]) -> Printer:
        """A printer honouring xDSL's printing options."""
        return Printer(stream=stream, print_generic_format=self.args.print_op_generic,
                       print_properties_as_attributes=self.args.print_no_properties,
                       print_debuginfo=self.args.print_debuginfo)

    def _parse_passes(self, spec: str) -> list[ModulePass]:
        """Like PassPipeline.parse_spec, but an unknown pass lists what is
        known and a bad option names its pass and the pass's options."""
        from relax_xdsl.passes import get_all_passes
        from relax_xdsl.passes.pipelines import PIPELINES

        passes = []
        for item in parse_pipeline(spec):
            if item.name not in self.available_passes:
                raise RelaxError(
                    f"-p: unknown pass {item.name!r}; this project's passes: {', '.join(get_all_passes())}; "
                    f"pipelines: {', '.join(PIPELINES)}; xDSL's passes: see --help")
            cls = self.available_passes[item.name]()
            try:
                passes.append(cls.from_pass_spec(item))
            except (ValueError, TypeError) as err:
                options = ", ".join(f.name.replace("_", "-") for f in dataclasses.fields(cls)) or "none"
                raise RelaxError(f"-p: pass {item.name!r}: {err} (its options: {options})") from None
        return passes

    def _check_print_ir_after(self, passes: Sequence[ModulePass]) -> None:
        from relax_xdsl.passes.pipelines import PIPELINES

        self.print_after = {_pass_name(p) for p in self.args.print_ir_after}
        for name in sorted(self.print_after):
            if name in PIPELINES:
                raise RelaxError(f"--print-ir-after: {name!r} is a pipeline; name one of its passes "
                                 f"({PIPELINES[name]})")
            if name not in self.available_passes:
                raise RelaxError(f"--print-ir-after: unknown pass {name!r}")
            if name not in {p.name for p in passes}:
                print(f"relax-xdsl-opt: warning: --print-ir-after={name}: the pipeline does not run {name}",
                      file=sys.stderr)

    def setup_pipeline(self) -> None:
        """Our callback instead of xDSL's: verification after each pass
        (a failure names the pass), --print-ir-after(-all), xDSL's
        --print-between-passes, and per-pass times for --time-passes."""
        from relax_xdsl.passes.pipelines import expand

        args = self.args
        passes = self._parse_passes(expand(args.passes)) if args.passes.strip() else []
        self._check_print_ir_after(passes)
        self.timings: list[tuple[str, float]] = []
        self.running: ModulePass | None = None
        started = [time.perf_counter()]

        def callback(prev: ModulePass | None, module: ModuleOp, nxt: ModulePass | None) -> None:
            if prev is not None:
                spec = str(prev.pipeline_pass_spec())
                self.timings.append((spec, time.perf_counter() - started[0]))
                if self.progress is not None:
                    self.progress.stage_done(f"pass {spec}", self.timings[-1][1])
                if not args.disable_verify:
                    try:
                        module.verify()
                    except VerifyException as err:
                        raise VerifyException(f"the IR after pass {spec} does not verify: {err}") from None
                if args.print_ir_after_all or prev.name in self.print_after:
                    print(f"// -----// IR after {spec} //----- //", file=sys.stderr)
                    self._printer(sys.stderr).print_op(module)
                    print("\n", file=sys.stderr)
                if nxt is not None and args.print_between_passes:
                    print(f"IR after {prev.name}:")
                    self._printer(sys.stdout).print_op(module)
                    print("\n\n\n")
            self.running = nxt
            started[0] = time.perf_counter()

        self.pipeline = PassPipeline(tuple(passes), callback)

    def apply_passes(self, prog: ModuleOp) -> None:
        """Runs the pipeline; a pass rejecting its input becomes a
        PassFailedException naming the pass (so --verify-diagnostics
        reports it too)."""
        self.timings = []
        t0 = time.perf_counter()
        self.progress = CompileProgress(lambda line: print(line, file=sys.stderr, flush=True))
        try:
            super().apply_passes(prog)
        except RelaxError as err:
            name = self.running.name if self.running is not None else "?"
            msg = str(err).strip() or type(err).__name__
            raise PassFailedException(msg if msg.startswith(name) else f"pass {name}: {msg}") from None
        if self.args.time_passes:
            self._print_timings(time.perf_counter() - t0)

    def output_resulting_program(self, prog: ModuleOp) -> str:
        """The target's output; its time is a stage of the progress lines."""
        t0 = time.perf_counter()
        text = super().output_resulting_program(prog)
        if self.progress is not None:
            self.progress.stage_done(f"target {self.args.target}", time.perf_counter() - t0)
        return text

    def _print_timings(self, wall: float) -> None:
        total = sum(secs for _, secs in self.timings)
        width = max([36, *(len(name) + 2 for name, _ in self.timings)])
        print(f"{'pass':<{width}} {'ms':>10} {'%':>6}", file=sys.stderr)
        for name, secs in self.timings:
            print(f"{name:<{width}} {secs * 1e3:10.2f} {100 * secs / total if total else 0:6.1f}", file=sys.stderr)
        print(f"{'total':<{width}} {total * 1e3:10.2f} {100.0:6.1f}", file=sys.stderr)
        print(f"{'(verification, printing)':<{width}} {(wall - total) * 1e3:10.2f}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the driver; every error the input or the command line can
    cause is one line (plus source context) on stderr and exit code 1."""
    try:
        RelaxOptMain("relax_xdsl modular optimizer driver", args=argv).run()
    except (ParseError, DiagnosticException, ArgSpecParseError, RelaxError, ValueError, OSError) as err:
        msg = str(err).strip() or type(err).__name__
        print(f"relax-xdsl-opt: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
