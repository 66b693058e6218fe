"""Reference documents generated from the code, so they cannot drift from it.

    python -m relax_xdsl.docs ir > docs/ir_reference.md
    python -m relax_xdsl.docs onnx [--results docs/onnx_conformance.json] > docs/onnx_coverage.md
    python -m relax_xdsl.docs trim-results RESULTS.json > docs/onnx_conformance.json

`ir` walks the IRDL definitions of the project's dialects (relax with its
control flow, tir, lib: the dialects `relax_xdsl.ir.make_context` loads) and
the graph op registry (one OpSpec per op: parameters, pattern kind, shape
rule, numpy reference, legalization). `onnx` lists every op of ONNX's
default domain with the converter the frontend registers for it, and the
per-op pass counts of a conformance run (benchmarks/onnx_conformance.py
--output) when a results file is given. Only what the package itself
registers is listed: ops and converters registered from user code (a test, a
script) in the same process are left out, so the output depends on the
package alone. tests/test_docs.py regenerates both files and compares.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from xdsl.ir import Attribute, Dialect, Operation
from xdsl.irdl import (
    AnyAttr,
    AnyOf,
    BaseAttr,
    EqAttrConstraint,
    OptOperandDef,
    OptPropertyDef,
    OptRegionDef,
    OptResultDef,
    ParamAttrConstraint,
    VarConstraint,
    VarOperandDef,
    VarRegionDef,
    VarResultDef,
)

MAX_ALTERNATIVES = 4
"""An `AnyOf` constraint with more alternatives prints its first ones and a count (float types: 20)."""


# -- constraints as text ------------------------------------------------------------------------------------------


def _attr_name(cls: type[Attribute]) -> str:
    name = getattr(cls, "name", None)
    return f"`{name}`" if isinstance(name, str) else f"`{cls.__name__}`"


def constraint_text(constr: Any) -> str:
    """A short, deterministic reading of an IRDL constraint (`relax.tensor`, `index`, `any`)."""
    inner = getattr(constr, "constraint", None) or getattr(constr, "constr", None)
    if isinstance(constr, AnyAttr):
        return "any"
    if isinstance(constr, BaseAttr):
        return _attr_name(constr.attr)
    if isinstance(constr, EqAttrConstraint):
        return f"`{constr.attr}`"
    if isinstance(constr, ParamAttrConstraint):
        return _attr_name(constr.base_attr)
    if isinstance(constr, VarConstraint):
        return constraint_text(constr.constraint)
    if isinstance(constr, AnyOf):
        parts = [constraint_text(c) for c in constr.attr_constrs]
        if len(parts) > MAX_ALTERNATIVES:
            return " or ".join(parts[:MAX_ALTERNATIVES]) + f" or ... ({len(parts)} kinds)"
        return " or ".join(parts)
    if hasattr(constr, "elem_range_constraint"):  # ArrayAttr[...] constraints
        return f"array of {constraint_text(constr.elem_range_constraint)}"
    if inner is not None and inner is not constr:  # range wrappers (RangeOf, RangeLengthConstraint)
        return constraint_text(inner)
    return f"`{type(constr).__name__}`"


def _arity(definition: Any, var: tuple[type, ...], opt: tuple[type, ...]) -> str:
    if isinstance(definition, opt):
        return "optional "
    if isinstance(definition, var):
        return "variadic "
    return ""


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else ""


def _blockquote(text: str) -> list[str]:
    return [f"> {line}".rstrip() for line in text.splitlines()] + [""] if text else []


# -- the IR reference ---------------------------------------------------------------------------------------------


def project_dialects() -> list[Dialect]:
    """The project's dialects as make_context loads them (relax includes its control flow ops)."""
    from relax_xdsl.ir import project_dialects as factories

    return [factory() for factory in factories().values()]


def _is_builtin_graph_op(op: type[Operation]) -> bool:
    spec = getattr(op, "SPEC", None)
    return spec is None or type(spec).__module__.startswith("relax_xdsl.")


def _op_section(op: type[Operation]) -> list[str]:
    definition = op.get_irdl_definition()
    lines = [f"### `{definition.name}`", ""]
    if definition.assembly_format:
        lines += ["Syntax (assembly format):", "", "```", definition.assembly_format, "```", ""]
    else:
        lines += ["Syntax: custom (see the description).", ""]
    rows: list[str] = []
    for name, d in definition.operands:
        rows.append(f"| operand | `{name}` | {_arity(d, (VarOperandDef,), (OptOperandDef,))}{constraint_text(d.constr)} |")
    for name, d in definition.results:
        rows.append(f"| result | `{name}` | {_arity(d, (VarResultDef,), (OptResultDef,))}{constraint_text(d.constr)} |")
    for name, d in definition.properties.items():
        opt = "optional " if isinstance(d, OptPropertyDef) else ""
        rows.append(f"| property | `{name}` | {opt}{constraint_text(d.constr)} |")
    for name, d in definition.attributes.items():
        opt = "optional " if type(d).__name__.startswith("Opt") else ""
        rows.append(f"| attribute | `{name}` | {opt}{constraint_text(d.constr)} |")
    for name, d in definition.regions:
        kind = "single-block " if "SingleBlock" in type(d).__name__ else ""
        rows.append(f"| region | `{name}` | {_arity(d, (VarRegionDef,), (OptRegionDef,))}{kind}region |")
    if rows:
        lines += ["| kind | name | type |", "| --- | --- | --- |", *rows, ""]
    traits = sorted(type(t).__name__ for t in definition.traits)
    if traits:
        lines += ["Traits: " + ", ".join(f"`{t}`" for t in traits) + ".", ""]
    return lines + _blockquote(_doc(op))


def _attribute_section(attr: type[Attribute]) -> list[str]:
    lines = [f"### `{attr.name}`", ""]
    params = getattr(attr, "get_irdl_definition", None)
    if params is not None:
        definition = attr.get_irdl_definition()
        fields = getattr(definition, "parameters", [])
        if fields:
            lines += ["| parameter | type |", "| --- | --- |"]
            lines += [f"| `{name}` | {constraint_text(c)} |" for name, c in fields]
            lines.append("")
    return lines + _blockquote(_doc(attr))


def _graph_op_section(spec: Any) -> list[str]:
    from relax_xdsl.ops.registry import REQUIRED

    cls = type(spec)
    inputs = ", ".join(f"%{n.lstrip('*')}" + ("..." if n.startswith("*") else "") for n in spec.inputs)
    syntax = " ".join(part for part in (f"%out = relax.{spec.name}", inputs, "{params}" if spec.params else "") if part)
    lines = [f"### `relax.{spec.name}`", "",
             "```",
             f"{syntax} : (operand types) -> result type",
             f"rx.op.{spec.name}{spec.signature()}",
             "```", ""]
    lines.append(f"Defined in `{cls.__module__}` (`{cls.__name__}`); fusion pattern kind `{spec.pattern}`; "
                 f"{'legalized to a tensor program' if spec.can_legalize else 'not legalized (offload or a pass)'}; "
                 "result type deduced by its shape rule; numpy reference for the evaluator.")
    lines.append("")
    variadic = " (variadic: a list of tensors)" if spec.variadic else ""
    operands = ", ".join(f"`{n.lstrip('*')}`" for n in spec.inputs) or "none"
    lines.append(f"Operands{variadic}: {operands}.")
    lines.append("")
    if spec.params:
        lines += ["| parameter | kind | default |", "| --- | --- | --- |"]
        for name, p in spec.params.items():
            default = "required" if p.default is REQUIRED else ("none" if p.default is None else f"`{p.default!r}`")
            lines.append(f"| `{name}` | {p.kind} | {default} |")
        lines.append("")
    return lines + _blockquote(_doc(cls))


def ir_reference() -> str:
    """The IR reference (docs/ir_reference.md) as markdown."""
    from relax_xdsl.dialects.relax import GraphOp
    from relax_xdsl.ops.registry import PATTERN_KINDS, all_specs

    dialects = project_dialects()
    out = ["# IR reference", "",
           "Generated by `python -m relax_xdsl.docs ir` from the IRDL definitions of the project's dialects and the",
           "graph op registry; tests/test_docs.py checks it is current. Do not edit by hand.", "",
           "Dims in types are integers or sympy expressions over named symbols (`n`, `2*n + 1`, `n floordiv 2`).",
           "Fusion pattern kinds: " + ", ".join(f"`{k}`" for k in PATTERN_KINDS) + ".", "",
           "## Contents", ""]
    for d in dialects:
        out.append(f"- [dialect `{d.name}`](#dialect-{d.name})")
    out.append("- [graph ops (the operator registry)](#graph-ops-the-operator-registry)")
    out.append("")
    for d in dialects:
        out += [f"## Dialect `{d.name}`", ""]
        module = sys.modules.get(f"relax_xdsl.dialects.{d.name}")
        if module is not None and module.__doc__:
            out += [inspect.cleandoc(module.__doc__), ""]
        attrs = sorted(d.attributes, key=lambda a: a.name)
        if attrs:
            out += ["Types and attributes:", ""]
            for a in attrs:
                out += _attribute_section(a)
        ops = sorted((o for o in d.operations if not issubclass(o, GraphOp)), key=lambda o: o.name)
        out += ["Operations:", ""]
        for o in ops:
            out += _op_section(o)
        graph = [o for o in d.operations if issubclass(o, GraphOp)]
        if graph:
            out += [f"Plus the {sum(map(_is_builtin_graph_op, graph))} graph ops below, one IRDL op generated per "
                    "registered OpSpec (operands `inputs`: variadic `relax.tensor`; result `res`; the op's parameters "
                    "as attributes; trait `Pure`; verified by re-running the shape rule).", ""]
    out += ["## Graph ops (the operator registry)", ""]
    specs = {n: s for n, s in all_specs().items() if type(s).__module__.startswith("relax_xdsl.")}
    out += [f"{len(specs)} ops, by name. Build one from Python with `rx.op.<name>(...)` inside a `FunctionBuilder`.",
            ""]
    for name in sorted(specs):
        out += _graph_op_section(specs[name])
    return "\n".join(out).rstrip() + "\n"


# -- ONNX coverage ------------------------------------------------------------------------------------------------


def onnx_converters() -> dict[str, Any]:
    """The converters the package registers, by ONNX op type (every frontend/onnx_ops*.py module imported)."""
    import relax_xdsl.frontend as frontend
    from relax_xdsl.frontend.onnx_import import CONVERTERS

    for info in sorted(pkgutil.iter_modules(frontend.__path__), key=lambda m: m.name):
        if info.name.startswith("onnx_ops"):
            importlib.import_module(f"relax_xdsl.frontend.{info.name}")
    return {t: c for t, c in CONVERTERS.items() if c.fn.__module__.startswith("relax_xdsl.")}


def _versions(versions: Iterable[int]) -> str:
    return ", ".join(str(v) for v in sorted(set(versions)))


def onnx_coverage(results: dict[str, Any] | None = None, results_name: str = "") -> str:
    """docs/onnx_coverage.md as markdown; `results`: a conformance results file's contents."""
    import onnx
    import onnx.defs

    schemas: dict[str, list[Any]] = {}
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain in ("", "ai.onnx"):
            schemas.setdefault(s.name, []).append(s)
    converters = onnx_converters()
    latest = onnx.defs.onnx_opset_version()
    per_op: dict[str, dict[str, int]] = (results or {}).get("per_op", {})
    covered = sorted(n for n in schemas if n in converters)
    out = ["# ONNX operator coverage", "",
           "Generated by `python -m relax_xdsl.docs onnx --results docs/onnx_conformance.json`; tests/test_docs.py",
           "checks it is current. Do not edit by hand.", "",
           f"Every operator of ONNX's default domain known to onnx {onnx.__version__} (opset {latest}): whether",
           "relax_xdsl's frontend has a converter (`relax_xdsl/frontend/onnx_ops*.py`, `register_converter`), the",
           "opset versions in which the operator's definition changed (each converter follows ONNX's semantics for",
           "the opset a model imports; where a version changes inputs or attributes the converter reads",
           "`node.opset`), and the attributes the converter understands (any other attribute on a node is an import",
           "error naming the node).", "",
           f"{len(covered)} of {len(schemas)} operators have a converter.", ""]
    if results is not None:
        totals = results.get("totals", {})
        run = results.get("run", sum(totals.values()))
        out += [f"Conformance columns: ONNX's node test cases run through `from_onnx` and `compile` on target "
                f"`{results.get('target', '?')}`, pipeline `{results.get('pipeline', '?')}`, by "
                f"`benchmarks/onnx_conformance.py --output` (file `{results_name}`; {run} cases: "
                + ", ".join(f"{v} {k.lower()}" for k, v in totals.items()) + "). A case counts for every op it uses; "
                "unsupported means a clean import refusal, error any other exception.", ""]
        head = "| op | converter | ONNX versions | pass | fail | unsupported | error/crash/timeout | attributes |"
        rule = "| --- | --- | --- | --- | --- | --- | --- | --- |"
    else:
        head, rule = "| op | converter | ONNX versions | attributes |", "| --- | --- | --- | --- |"
    out += [head, rule]
    for name in sorted(schemas, key=str.lower):
        versions = [s.since_version for s in schemas[name]]
        deprecated = any(s.deprecated for s in schemas[name])
        conv = converters.get(name)
        where = f"yes (`{conv.fn.__module__.rsplit('.', 1)[-1]}`)" if conv else "no"
        attrs = ", ".join(f"`{a}`" for a in sorted(conv.attrs)) if conv else ""
        label = f"{name} (deprecated)" if deprecated else name
        cells = [label, where, _versions(versions)]
        if results is not None:
            row = per_op.get(name)
            if row is None:
                cells += ["", "", "", ""]
            else:
                bad = row.get("ERROR", 0) + row.get("CRASH", 0) + row.get("TIMEOUT", 0)
                cells += [str(row.get("PASS", 0)), str(row.get("FAIL", 0)), str(row.get("UNSUPPORTED", 0)), str(bad)]
        cells.append(attrs)
        out.append("| " + " | ".join(cells) + " |")
    extra = sorted(set(converters) - set(schemas))
    if extra:
        out += ["", "Converters for op types outside the default domain's schemas: "
                + ", ".join(f"`{t}`" for t in extra) + "."]
    return "\n".join(out) + "\n"


def trim_results(results: dict[str, Any]) -> dict[str, Any]:
    """What onnx_coverage reads of a conformance results file (the per-case list and timings left out)."""
    keys = ("generated", "run", "target", "pipeline", "totals", "named_op_totals", "per_op")
    return {k: results[k] for k in keys if k in results}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m relax_xdsl.docs", description="Generate the reference documents.")
    sub = ap.add_subparsers(dest="what", required=True)
    sub.add_parser("ir", help="the IR reference (docs/ir_reference.md)")
    onnx_p = sub.add_parser("onnx", help="the ONNX coverage table (docs/onnx_coverage.md)")
    onnx_p.add_argument("--results", default=None, help="a conformance results JSON (per-op pass counts)")
    trim_p = sub.add_parser("trim-results", help="a conformance results JSON cut to what `onnx` reads")
    trim_p.add_argument("results")
    a = ap.parse_args(argv)
    if a.what == "ir":
        sys.stdout.write(ir_reference())
    elif a.what == "onnx":
        results = json.loads(Path(a.results).read_text()) if a.results else None
        sys.stdout.write(onnx_coverage(results, Path(a.results).name if a.results else ""))
    else:
        sys.stdout.write(json.dumps(trim_results(json.loads(Path(a.results).read_text())), indent=1, sort_keys=True)
                         + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
