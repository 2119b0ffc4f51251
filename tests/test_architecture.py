"""The rooms of the package and which may import which, checked from the source with ``ast``.

Every module under isingscale/ is parsed; every import counts, those inside functions too.
The layering (docs/design.md, "The rooms"):

    cli  ->  evaluation  ->  {skild, analysis, baselines}  ->  {mc, exact, io and the other
    bottom modules: constants, errors, stats, blocks, lattices, device, cluster}

skild and analysis never import each other; baselines may import skild, not the reverse.
Also: no import cycle among isingscale modules, no private (_underscore) name or module
imported across modules, and no function longer than 80 lines outside cli/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "isingscale"
MAX_FUNCTION_LINES = 80

ABOVE = {  # room -> rooms it must not import
    "skild": {"analysis", "evaluation", "baselines", "cli"},
    "analysis": {"skild", "evaluation", "baselines", "cli"},
    "baselines": {"evaluation", "analysis", "cli"},
    "evaluation": {"cli"},
}
BOTTOM = ("mc", "exact", "io", "constants", "errors", "stats", "blocks", "lattices", "device")
UPPER = {"analysis", "skild", "evaluation", "baselines", "cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def room(module: str) -> str:
    """isingscale.skild.train -> skild; isingscale.io -> io; isingscale -> isingscale."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported isingscale module, imported name or None, line) of every import in ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append(
                    (sub, None, node.lineno) if sub in MODULES else (target, a.name, node.lineno)
                )
    return [(m, n, line) for m, n, line in out if m == "isingscale" or m.startswith("isingscale.")]


GRAPH = {m: {t for t, _, _ in imports(m) if t in MODULES and t != m} for m in MODULES}


def violations(rooms: set[str], forbidden: set[str]) -> list[str]:
    return [
        f"{m} imports {t} (line {line})"
        for m in MODULES
        if room(m) in rooms
        for t, _, line in imports(m)
        if room(t) in forbidden
    ]


@pytest.mark.parametrize("source", sorted(ABOVE))
def test_rooms_import_only_downwards(source):
    assert not violations({source}, ABOVE[source])


def test_bottom_modules_import_nothing_above_them_except_mc():
    assert not violations(set(BOTTOM) - {"mc"}, UPPER)


def test_mc_imports_nothing_above_it():
    assert not violations({"mc"}, UPPER)


def test_the_checks_see_imports_inside_functions(tmp_path, monkeypatch):
    # A rule that cannot fail proves nothing: an import inside a function must be found.
    probe = PACKAGE / "skild" / "train.py"
    found = [t for t, _, _ in imports("isingscale.skild.coarse")]
    assert "isingscale.skild.loop" in found and probe.exists()
    text = "def f():\n    from ..analysis import correlators\n    return correlators\n"
    fake = tmp_path / "isingscale" / "skild" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(text)
    monkeypatch.setitem(MODULES, "isingscale.skild.fake", fake)
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path / "isingscale")
    assert imports("isingscale.skild.fake") == [("isingscale.analysis.correlators", None, 2)]
    assert violations({"skild"}, {"analysis"}) == [
        "isingscale.skild.fake imports isingscale.analysis.correlators (line 2)"
    ]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (a list of modules, first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_no_import_cycle():
    graph = {m: set(GRAPH[m]) for m in GRAPH}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def private_imports(rooms) -> list[str]:
    bad = []
    for m in MODULES:
        if room(m) not in rooms:
            continue
        for t, name, line in imports(m):
            private = any(p.startswith("_") and not p.startswith("__") for p in t.split("."))
            if private or (name and name.startswith("_") and not name.startswith("__")):
                bad.append(f"{m} imports {t}{'.' + name if name else ''} (line {line})")
    return bad


ROOMS = sorted({room(m) for m in MODULES})


def test_no_private_name_or_module_crosses_modules():
    assert not private_imports(set(ROOMS))
    private = [m for m in MODULES if m.split(".")[-1].startswith("_")]
    assert private == ["isingscale.__main__"]  # dunder, not private


def test_no_private_attribute_of_another_module_is_used():
    bad = []
    for m, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(m, node)
                for a in node.names:
                    if f"{target}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{target}.{a.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                bad.append(f"{m}: {aliases[node.value.id]}.{node.attr} (line {node.lineno})")
    assert not bad


def function_lengths() -> list[tuple[int, str]]:
    out = []
    for m, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((node.end_lineno - node.lineno + 1, f"{m}.{node.name}"))
    return sorted(out, reverse=True)


@pytest.mark.parametrize("where", [r for r in ROOMS if r != "cli"])
def test_no_function_longer_than_80_lines_outside_cli(where):
    long = [
        f"{name}: {n} lines"
        for n, name in function_lengths()
        if n > MAX_FUNCTION_LINES and room(name.rsplit(".", 1)[0]) == where
    ]
    assert not long
