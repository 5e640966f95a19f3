"""The package structure: no import cycle between modules or between packages, no module
importing a CLI module, ``deepnets/``'s floors importing only downwards (``DEEPNETS_FLOORS``),
shared utilities importing nothing of the project, and docs/equations.md naming only functions
that exist.

Every import counts, at module level or inside a function (a lazy import still ties the two
modules together), in every package and in ``benchmarks/``. A CLI module (``__main__.py`` or one
with an ``if __name__ == "__main__":`` block) is an entry point: nothing imports it, so it sits
above every package and its imports do not count in the graph of packages. Each check is also
run on a small planted tree in ``tmp_path`` to show that it fails when it should.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "sims", "deepnets", "figures", "benchmarks")
SHARED = "urfb_common"

#: The floors of ``deepnets/``, lowest first: a module imports only from its own floor or the
#: ones below it. Above them: the package's ``__init__`` (its lazy public names) and the CLI
#: modules ``deepnets.train``, ``suite``, ``evaluate``, ``rulebench``.
DEEPNETS_FLOORS = ("deepnets.rules", "deepnets.nn", "deepnets.training", "deepnets.experiments")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, packages: tuple[str, ...] = PACKAGES,
                 shared: str = SHARED) -> dict[str, Path]:
    """Module name -> file of every Python module of ``packages`` (folders) and ``shared.py``."""
    found = {_module_name(root, p): p for pkg in packages for p in (root / pkg).rglob("*.py")}
    found[shared] = root / f"{shared}.py"
    return found


def is_cli(path: Path) -> bool:
    """A ``__main__.py``, or a module with a top-level ``if __name__ == "__main__":`` block."""
    if path.name == "__main__.py":
        return True
    for node in ast.parse(path.read_text()).body:
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"):
            return True
    return False


def _absolute(module: str | None, level: int, importer: str, path: Path) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _calls(nodes: list[ast.AST], function: str) -> bool:
    """Whether any of ``nodes`` calls ``function`` (as ``function(...)`` or ``x.function(...)``)."""
    return any(isinstance(n, ast.Call) and function in (getattr(n.func, "attr", None),
                                                        getattr(n.func, "id", None))
               for n in nodes)


def _dynamic_imports(name: str, path: Path, nodes: list[ast.AST], known: set[str]) -> set[str]:
    """Modules imported by name at run time: a module calling ``importlib.import_module``
    imports every project module it names in a string (a lazy ``__getattr__`` table, say); a
    package ``__init__`` walking ``pkgutil.iter_modules(__path__)`` imports its own modules."""
    out: set[str] = set()
    if _calls(nodes, "import_module"):
        out |= {n.value for n in nodes if isinstance(n, ast.Constant) and n.value in known}
    if path.name == "__init__.py" and _calls(nodes, "iter_modules"):
        out |= {m for m in known if m.rpartition(".")[0] == name}
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that ``name`` imports anywhere in its file (module level, in functions,
    under ``if``/``try``, by name at run time: :func:`_dynamic_imports`), as the longest known
    prefix of each imported name. In a folder of scripts (no ``__init__.py``, like
    ``benchmarks/``) a plain ``import x`` may name a sibling: the script's folder is on
    ``sys.path``."""
    nodes = list(ast.walk(ast.parse(path.read_text())))
    out = _dynamic_imports(name, path, nodes, known)
    folder = name.rpartition(".")[0] if not (path.parent / "__init__.py").exists() else ""
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, name, path)
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        if folder and not getattr(node, "level", 0):
            names += [f"{folder}.{n}" for n in names]
        for imported in names:
            parts = imported.split(".")
            prefixes = (".".join(parts[:i]) for i in range(len(parts), 0, -1))
            if (hit := next((p for p in prefixes if p in known), None)) is not None:
                out.add(hit)
    out.discard(name)
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph``, as a path that returns to its start (a module importing its own
    parent package is not a cycle with it: the package's ``__init__`` runs first)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
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


def package_graph(graph: dict[str, set[str]], clis: set[str]) -> dict[str, set[str]]:
    """Top-level package -> the other packages its modules import, CLI modules left out."""
    out: dict[str, set[str]] = {}
    for name, deps in graph.items():
        if name in clis:
            continue
        top = name.split(".")[0]
        out.setdefault(top, set()).update(d.split(".")[0] for d in deps)
        out[top].discard(top)
    return out


def cli_imports(graph: dict[str, set[str]], clis: set[str]) -> list[tuple[str, str]]:
    """(importer, CLI module) for every import of a CLI module by another module."""
    return sorted((name, dep) for name, deps in graph.items() for dep in deps if dep in clis)


def floor_of(module: str, floors: tuple[str, ...]) -> int | None:
    """Index in ``floors`` of the subpackage holding ``module``; None outside them."""
    return next((i for i, f in enumerate(floors) if module == f or module.startswith(f + ".")),
                None)


def upward_imports(graph: dict[str, set[str]], floors: tuple[str, ...]) -> list[tuple[str, str]]:
    """(importer, imported) for every import from a floor into a higher one."""
    return sorted((name, dep) for name, deps in graph.items() for dep in deps
                  if (low := floor_of(name, floors)) is not None
                  and (high := floor_of(dep, floors)) is not None and high > low)


def _project() -> tuple[dict[str, set[str]], set[str]]:
    """The project's import graph and its CLI modules."""
    modules = find_modules(ROOT)
    return import_graph(modules), {name for name, path in modules.items() if is_cli(path)}


def test_no_module_import_cycle() -> None:
    graph, _ = _project()
    assert find_cycle(graph) is None


def test_no_package_import_cycle() -> None:
    graph, clis = _project()
    assert find_cycle(package_graph(graph, clis)) is None


def test_no_module_imports_a_cli_module() -> None:
    graph, clis = _project()
    assert {"deepnets.train", "deepnets.suite", "figures.__main__", "sims.epsilon_sweep",
            "sims.depth_sweep", "benchmarks.bench_step"} <= clis
    assert cli_imports(graph, clis) == []


def test_deepnets_floors_import_only_downwards() -> None:
    graph, _ = _project()
    found = {m for m in graph if m.startswith("deepnets.")}
    placed = {m for m in found if floor_of(m, DEEPNETS_FLOORS) is not None}
    assert {"deepnets.nn.layers", "deepnets.training.engine", "deepnets.experiments.runs"} <= placed
    # every library module sits on a floor; only the CLI modules are left at the top
    assert found - placed == {"deepnets.train", "deepnets.suite", "deepnets.evaluate",
                              "deepnets.rulebench"}
    assert upward_imports(graph, DEEPNETS_FLOORS) == []


def test_shared_utilities_import_nothing_of_the_project() -> None:
    graph, _ = _project()
    assert graph[SHARED] == set()


# --- each check fails on a planted tree -------------------------------------------------------


def _plant(root: Path, files: dict[str, str]) -> dict[str, Path]:
    """Write ``files`` (relative path -> source) under ``root``; return its modules."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "shared.py").write_text("")
    return find_modules(root, packages=("lib", "app", "benchmarks"), shared="shared")


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    modules = _plant(tmp_path, {
        "lib/__init__.py": "",
        "lib/layers.py": "from lib.rules import rule\n",
        "lib/rules.py": "def rule():\n    from lib import layers\n    return layers\n",
    })
    assert find_cycle(import_graph(modules)) == ["lib.layers", "lib.rules", "lib.layers"]


def test_a_cycle_through_a_relative_import_is_found(tmp_path: Path) -> None:
    modules = _plant(tmp_path, {
        "lib/__init__.py": "",
        "lib/a.py": "from .b import x\n",
        "lib/b.py": "try:\n    from . import a\nexcept ImportError:\n    a = None\n",
    })
    assert find_cycle(import_graph(modules)) == ["lib.a", "lib.b", "lib.a"]


def test_a_cycle_through_imports_by_name_is_found(tmp_path: Path) -> None:
    modules = _plant(tmp_path, {
        "lib/__init__.py": ("import importlib\n\nTABLE = {'Layer': 'lib.layers'}\n\n\n"
                            "def __getattr__(attr):\n"
                            "    return getattr(importlib.import_module(TABLE[attr]), attr)\n"),
        "lib/layers.py": "from lib.rules import RULES\n",
        "lib/rules/__init__.py": ("import importlib\nimport pkgutil\n\n"
                                  "RULES = [importlib.import_module(f'{__name__}.{m.name}')\n"
                                  "         for m in pkgutil.iter_modules(__path__)]\n"),
        "lib/rules/plain.py": "",
        "lib/rules/mirror.py": "def start():\n    from lib.layers import Layer\n",
    })
    graph = import_graph(modules)
    assert graph["lib"] == {"lib.layers"}
    assert graph["lib.rules"] == {"lib.rules.plain", "lib.rules.mirror"}
    assert find_cycle(graph) == ["lib.layers", "lib.rules", "lib.rules.mirror", "lib.layers"]


def test_a_loop_between_packages_is_found(tmp_path: Path) -> None:
    # No module cycle: lib.sweep -> app.draw -> lib.stats; the packages still loop.
    modules = _plant(tmp_path, {
        "lib/__init__.py": "",
        "lib/stats.py": "",
        "lib/sweep.py": "def main():\n    from app.draw import plot\n    plot()\n",
        "app/__init__.py": "",
        "app/draw.py": "from lib.stats import collect\n",
    })
    graph = import_graph(modules)
    clis = {n for n, p in modules.items() if is_cli(p)}
    assert find_cycle(graph) is None
    assert find_cycle(package_graph(graph, clis)) == ["app", "lib", "app"]


def test_a_cli_module_importing_upwards_makes_no_package_loop(tmp_path: Path) -> None:
    modules = _plant(tmp_path, {
        "lib/__init__.py": "",
        "lib/stats.py": "",
        "lib/sweep.py": ("from app.draw import plot\n\nif __name__ == \"__main__\":\n"
                         "    plot()\n"),
        "app/__init__.py": "",
        "app/draw.py": "from lib.stats import collect\n",
    })
    graph = import_graph(modules)
    clis = {n for n, p in modules.items() if is_cli(p)}
    assert clis == {"lib.sweep"}
    assert find_cycle(package_graph(graph, clis)) is None


def test_a_benchmark_importing_a_cli_module_is_found(tmp_path: Path) -> None:
    modules = _plant(tmp_path, {
        "lib/__init__.py": "",
        "lib/sweep.py": "def main():\n    pass\n\n\nif __name__ == \"__main__\":\n    main()\n",
        "benchmarks/bench.py": "def time_it():\n    from lib.sweep import main\n    main()\n",
        "app/__main__.py": "import lib\n",
    })
    graph = import_graph(modules)
    clis = {n for n, p in modules.items() if is_cli(p)}
    assert clis == {"lib.sweep", "app.__main__"}
    assert cli_imports(graph, clis) == [("benchmarks.bench", "lib.sweep")]


def test_a_script_importing_a_sibling_cli_script_is_found(tmp_path: Path) -> None:
    modules = _plant(tmp_path, {
        "lib/__init__.py": "",
        "benchmarks/bench_a.py": "from bench_b import helper\n",
        "benchmarks/bench_b.py": ("def helper():\n    pass\n\n\n"
                                  "if __name__ == \"__main__\":\n    helper()\n"),
        "benchmarks/memory.py": "",
        "benchmarks/bench_c.py": "import memory\n",
    })
    graph = import_graph(modules)
    clis = {n for n, p in modules.items() if is_cli(p)}
    assert graph["benchmarks.bench_c"] == {"benchmarks.memory"}
    assert cli_imports(graph, clis) == [("benchmarks.bench_a", "benchmarks.bench_b")]


def test_an_import_from_a_higher_floor_is_found(tmp_path: Path) -> None:
    modules = _plant(tmp_path, {
        "lib/__init__.py": "",
        "lib/low/__init__.py": "",
        "lib/low/math.py": "def f():\n    from lib.high.run import go\n    go()\n",
        "lib/high/__init__.py": "",
        "lib/high/run.py": "from lib.low.math import f\n\n\ndef go():\n    pass\n",
    })
    graph = import_graph(modules)
    assert upward_imports(graph, ("lib.low", "lib.high")) == [("lib.low.math", "lib.high.run")]
    assert upward_imports(graph, ("lib.high", "lib.low")) == [("lib.high.run", "lib.low.math")]


def test_shared_utilities_importing_the_project_are_found(tmp_path: Path) -> None:
    modules = _plant(tmp_path, {"lib/__init__.py": "", "lib/x.py": ""})
    (tmp_path / "shared.py").write_text("def f():\n    import lib.x\n")
    assert import_graph(modules)["shared"] == {"lib.x"}


# --- docs/equations.md -------------------------------------------------------------------------


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
    module = importlib.import_module(_module_name(ROOT, ROOT / file))
    obj = module
    for part in name.split("."):
        assert hasattr(obj, part), f"{what}: {file} has no {name}"
        obj = getattr(obj, part)
