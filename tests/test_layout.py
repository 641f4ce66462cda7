"""The package's layers: core and tasks never import Dagster, imports only point down, no cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import etl_monitor_dagster

PACKAGE = Path(etl_monitor_dagster.__file__).parent
NAME = "etl_monitor_dagster"
LAYERS = {"core": {"core"}, "tasks": {"core", "tasks"}}  # layer -> layers it may import


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    """The package's modules ``module`` imports anywhere (outside ``if TYPE_CHECKING:``)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(NAME)}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if not base.startswith(NAME):
                continue
            for alias in node.names:  # ``from pkg import submodule`` imports the submodule
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found & set(MODULES)


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_three_layers_exist_as_subpackages():
    assert {f"{NAME}.core", f"{NAME}.tasks", f"{NAME}.dagster", f"{NAME}.core.monitor"} <= set(MODULES)


def test_core_and_tasks_import_only_the_layers_below_them():
    wrong = [f"{m} imports {i}" for m, imports in GRAPH.items() if _layer(m) in LAYERS
             for i in imports if _layer(i) not in LAYERS[_layer(m)]]
    assert wrong == []


def test_importing_every_core_and_tasks_module_loads_no_dagster():
    modules = [m for m in MODULES if _layer(m) in LAYERS]
    code = (f"import sys\nfor m in {modules!r}:\n    __import__(m)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'dagster' or n.startswith('dagster_')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert len(modules) > 20
    assert loaded.strip() == "[]"


def test_the_package_has_no_import_cycle():
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(GRAPH[module]):
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported):], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_dagster_layer_holds_no_sql_text():
    keywords = ("SELECT ", "INSERT INTO", "MERGE INTO", "UPDATE ", "DELETE FROM", "CREATE ", ".sql(")
    found = [f"{m}: {k.strip()}" for m, path in MODULES.items() if _layer(m) == "dagster"
             for k in keywords if k in _code(path)]
    assert found == []


def _code(path: Path) -> str:
    """The module without its docstrings: the code and its string constants."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body.pop(0)
    return ast.unparse(tree)
