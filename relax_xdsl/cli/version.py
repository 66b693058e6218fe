"""The version both commands report with `--version`: relax_xdsl's (the
installed distribution's), since that is what decides what a model compiles
to; xDSL's is pinned by it and shown alongside."""

from __future__ import annotations

from relax_xdsl.backend.toolchain import installed_version


def relax_xdsl_version() -> str:
    """The installed relax_xdsl version; a source tree that was never
    installed has no metadata to read, and says so rather than guessing."""
    return installed_version("relax_xdsl") or "unknown (not installed)"


def version_line(command: str) -> str:
    """`relax-xdsl-opt 0.1.0 (xDSL 0.74.0)`."""
    return f"{command} {relax_xdsl_version()} (xDSL {installed_version('xdsl') or 'unknown'})"
