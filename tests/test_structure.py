"""The package structure: no import cycle between modules, no package importing another
package's CLI module, shared utilities importing nothing of the project, and docs/equations.md
naming only functions that exist."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "sims", "deepnets", "figures")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    found["urfb_common"] = ROOT / "urfb_common.py"
    return found


def _is_cli(path: Path) -> bool:
    return path.name == "__main__.py" or 'if __name__ == "__main__"' in path.read_text()


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """Project modules imported at module level (imports inside functions are lazy: skipped)."""
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out.update(n for n in names if n in known)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _top_level_imports(path, set(mods)) - {name} for name, path in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a package's ``__init__`` importing its own modules is not
    a cycle with them: a module importing its parent package is ignored)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle() -> None:
    assert _cycle(_graph()) is None


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]


def test_no_package_imports_another_packages_cli_module() -> None:
    mods = _modules()
    clis = {name for name, path in mods.items() if _is_cli(path)}
    assert {"deepnets.train", "deepnets.suite", "figures.__main__"} <= clis
    bad = [
        (name, dep)
        for name, deps in _graph().items()
        for dep in deps
        if dep in clis and dep.split(".")[0] != name.split(".")[0]
    ]
    assert bad == []


def test_shared_utilities_import_nothing_of_the_project() -> None:
    assert _graph()["urfb_common"] == set()


def _equation_rows() -> list[tuple[str, str, str]]:
    """(what, file, name) of every table row of docs/equations.md."""
    rows = []
    for line in (ROOT / "docs" / "equations.md").read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) >= 3 and cells[1].startswith("`") and cells[1].endswith(".py`"):
            rows.append((cells[0], cells[1].strip("`"), cells[2].strip("`")))
    return rows


def test_equations_table_covers_the_numbered_equations() -> None:
    text = " ".join(what for what, _, _ in _equation_rows())
    numbers = {int(n) for n in re.findall(r"\((\d+)\)", text)}
    assert set(range(1, 20)) <= numbers


@pytest.mark.parametrize("what, file, name", _equation_rows())
def test_each_function_named_in_the_equations_table_exists(what: str, file: str, name: str) -> None:
    module = importlib.import_module(_module_name(ROOT / file))
    obj = module
    for part in name.split("."):
        assert hasattr(obj, part), f"{what}: {file} has no {name}"
        obj = getattr(obj, part)
