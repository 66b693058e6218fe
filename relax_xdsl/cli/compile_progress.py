"""Per-stage progress of a long compile, on stderr, for both commands.

A quick compile prints nothing extra; one still running PROGRESS_AFTER_SECONDS
after it began prints a line for each pass from then on, so a user waiting on a
large model sees where the time goes without asking for --verbose (which shows
every pass from the start).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.arg_spec import parse_pipeline
from xdsl.utils.exceptions import ArgSpecParseError

import relax_xdsl as rx
from relax_xdsl.passes.pipelines import expand, observe_passes

PROGRESS_AFTER_SECONDS = 2.0
"""Seconds into a compile after which each finished stage is reported (read at
each stage, so tests can lower it)."""


class CompileProgress:
    """Stage lines (`  pass legalize  12.31 ms  (at 2.4 s)`) through `say`:
    all of them when `always`, else those finishing once the compile has run
    PROGRESS_AFTER_SECONDS."""

    def __init__(self, say: Callable[[str], None], always: bool = False,
                 clock: Callable[[], float] = time.perf_counter):
        self.say = say
        self.always = always
        self.clock = clock
        self.started = clock()
        self.shown = False
        """Whether the first line has been printed (then every later one is)."""

    def elapsed(self) -> float:
        return self.clock() - self.started

    def showing(self) -> bool:
        if not self.shown and (self.always or self.elapsed() >= PROGRESS_AFTER_SECONDS):
            self.shown = True
            if not self.always:
                self.say(f"  still compiling after {self.elapsed():.1f} s; each stage as it ends:")
        return self.shown

    def stage_done(self, what: str, seconds: float) -> None:
        if self.showing():
            self.say(f"  {what:<33} {seconds * 1e3:9.2f} ms  (at {self.elapsed():.1f} s)")

    def note(self, what: str) -> None:
        if self.showing():
            self.say(f"  {what}")


def compile_with_progress(module: ModuleOp, target: str, pipeline: str, say: Callable[[str], None],
                          always: bool = False) -> rx.Executable:
    """`relax_xdsl.compile`, reporting each pass (observe_passes) and then the
    backend (for `c`, the C compiler) as CompileProgress decides."""
    progress = CompileProgress(say, always)
    try:
        passes = len(list(parse_pipeline(expand(pipeline))))
    except ArgSpecParseError:  # compile reports a malformed spec, with its position
        passes = -1
    done = [0]
    backend = "C backend (emit C, cc)" if target == "c" else f"backend {target}"

    def observe(spec: str, seconds: float) -> None:
        progress.stage_done(f"pass {spec}", seconds)
        done[0] += 1
        if done[0] == passes:  # the pipeline is over; the backend runs next
            progress.note(f"{backend} ...")

    with observe_passes(observe):
        exe = rx.compile(module, target=target, pipeline=pipeline)
    progress.stage_done(backend, exe.timings["backend"])
    return exe
