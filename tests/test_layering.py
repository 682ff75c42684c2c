"""The rooms of rlkit import one way only (docs/architecture.md): a lower room never imports a higher one,
production code never imports the test kit, no module imports itself back through a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "rlkit"

#: room -> the rooms it may import (lowest first); modules at the package top (rlkit/*.py) are leaves
#: except the entry points below.
ALLOWED: dict[str, set[str]] = {
    "metrics": set(),
    "ops": {"metrics"},
    "data": {"ops", "metrics"},
    "policies": {"data", "ops", "metrics"},
    "rewards": {"policies", "data", "ops", "metrics"},
    "envs": {"rewards", "policies", "data", "ops", "metrics"},
    "loops": {"envs", "rewards", "policies", "data", "ops", "metrics"},
    "eval": {"loops", "envs", "rewards", "policies", "data", "ops", "metrics"},
    "train": {"eval", "loops", "envs", "rewards", "policies", "data", "ops", "metrics"},
}
ROOMS = set(ALLOWED) | {"testing"}
#: modules that may import any room: the command-line entry points and the installation report
ENTRY_POINTS = {"rlkit/cli.py", "rlkit/cli_retouch.py", "rlkit/info.py"}
#: deliberate exceptions, each with its reason
EXCEPTIONS = {
    ("rlkit/train/quickstart.py", "testing"): "the quickstart is a demo that runs on the tiny models by design",
}


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path = ROOT) -> list[tuple[str, int]]:
    """Every rlkit module ``path`` imports anywhere in the file (absolute or relative), with its line;
    ``from a.b import c`` yields ``a.b.c`` (c may be a submodule) and ``a.b``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "rlkit"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] == "rlkit":
                out += [(f"{base}.{a.name}", node.lineno) for a in node.names] + [(base, node.lineno)]
    return out


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def layering_violations(root: Path = ROOT) -> list[str]:
    """``file:line: room -> room`` for each import that runs against the arrows."""
    bad: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = str(path.relative_to(root.parent))
        if rel in ENTRY_POINTS:
            continue
        mine = _room(_module_name(path, root))
        for target, line in _imports(path, root):
            theirs = _room(target)
            if theirs is None or theirs == mine or (rel, theirs) in EXCEPTIONS:
                continue
            if theirs == "testing" and path.name == "cli.py":  # a room's commands resolve `tiny:` names
                continue
            if mine is None:  # a leaf module at the package top (errors, _mkl_warmup, ...) imports no room
                bad.append(f"{rel}:{line}: top-level module -> {theirs}")
            elif mine != "testing" and theirs not in ALLOWED[mine]:
                bad.append(f"{rel}:{line}: {mine} -> {theirs}")
    return list(dict.fromkeys(bad))


def module_cycles(root: Path = ROOT) -> list[list[str]]:
    """Import cycles between modules, counting imports inside functions too (a deferred import that closes
    a cycle is still a cycle). A package's ``__init__`` importing its own submodules is not one."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for target, _ in _imports(path, root):
            if target in modules and target != name and not name.startswith(target + "."):
                deps.add(target)
        graph[name] = deps
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                if not any(dep.startswith(m + ".") or m.startswith(dep + ".") for m in cycle[1:-1]):
                    cycles.append(cycle)
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_rooms_import_one_way():
    assert layering_violations() == []


def test_no_import_cycles_between_modules():
    assert module_cycles() == []


def test_the_check_catches_a_back_arrow(tmp_path):
    """A copy of the tree with one added back-arrow (ops importing rewards) fails the check, with its line."""
    copy = tmp_path / "rlkit"
    for path in ROOT.rglob("*.py"):
        target = copy / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert layering_violations(copy) == []
    leaf = copy / "ops" / "color.py"
    leaf.write_text(leaf.read_text(encoding="utf-8") + "\nfrom rlkit.rewards import Reward  # noqa\n",
                    encoding="utf-8")
    bad = layering_violations(copy)
    assert len(bad) == 1 and bad[0].startswith("rlkit/ops/color.py:") and bad[0].endswith("ops -> rewards")


@pytest.mark.parametrize("room", sorted(ROOMS - {"testing"}))
def test_production_never_imports_the_test_kit(room):
    users = [f"{p.relative_to(ROOT.parent)}:{line}" for p in sorted((ROOT / room).rglob("*.py"))
             for target, line in _imports(p) if _room(target) == "testing" and p.name != "cli.py"
             and (str(p.relative_to(ROOT.parent)), "testing") not in EXCEPTIONS]
    assert users == []
