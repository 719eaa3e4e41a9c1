"""The package's layers are a contract, checked over its import graph (every import, also those inside
functions): core/ < hooks/ < operators/, sensors/ < dag_factory < cli/, no room imports a room above it,
and no modules import each other in a circle. docs/architecture.md draws the same rooms."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "plugins" / "mlops_pack"

# A room's floor: it may import rooms on its own floor or below, never above.
FLOORS = {
    "core": 0,  # pure logic: no Airflow, no other room of the pack
    "__init__": 1, "settings": 1, "assets": 1,  # the version, [mlops] settings, asset names
    "hooks": 2, "notifications": 2,  # one hook per external system; alert notifiers
    "triggers": 3, "links": 3, "tasks": 3,  # deferral triggers, extra links (over hooks); the task base
    "promotion_service": 3,  # lock, repair, fenced moves and records of every promotion (over hooks)
    "ui": 4, "operators": 4, "sensors": 4,  # the health page and served files; the tasks
    "dag_factory": 5,  # specs -> DAGs
    "task_imports": 6,  # what the forkserver of a LocalExecutor loads for every task (the DAG factory too)
    "cli": 6, "plugin": 6, "provider": 6,  # entry points
}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path, package_root: Path = PACKAGE) -> set[str]:
    """Modules of the pack that ``path`` imports, anywhere in it."""
    module, found = module_name(path, package_root), set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mlops_pack"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith("mlops_pack"):
                found.add(target)
                # `from mlops_pack import settings` imports the module mlops_pack.settings
                found.update(f"{target}.{a.name}" for a in node.names if (package_root.parent / f"{target}.{a.name}"
                                                                         .replace(".", "/")).with_suffix(".py").exists())
    return found - {module}


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    return {m: {t for t in imports(p, package) if t in modules and t != "mlops_pack"} for m, p in modules.items()}


def upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} -> {t}" for m, targets in edges.items() for t in targets if FLOORS[room(t)] > FLOORS[room(m)])


def test_every_room_has_a_floor():
    rooms = {room(m) for m in graph()}
    assert rooms <= set(FLOORS), f"rooms without a floor in this test: {sorted(rooms - set(FLOORS))}"


def test_no_room_imports_a_room_above_it():
    assert upward(graph()) == []


def test_core_imports_nothing_of_the_pack_but_core_and_no_airflow():
    outside, airflow = [], []
    for path in (PACKAGE / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level]
        outside += [f"{path.name}: {n}" for n in names if n.startswith("mlops_pack") and not n.startswith("mlops_pack.core")]
        airflow += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "airflow"]
    assert outside == [] and airflow == []


def circles(edges: dict[str, set[str]]) -> list[str]:
    found: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                found.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return found


def test_no_modules_import_each_other_in_a_circle():
    assert circles(graph()) == []


def test_the_checker_sees_an_upward_import_and_a_circle(tmp_path):
    """A green run means something: a made-up package with both faults is caught."""
    fake = tmp_path / "mlops_pack"
    (fake / "core").mkdir(parents=True)
    (fake / "operators").mkdir()
    for init in (fake / "__init__.py", fake / "core" / "__init__.py", fake / "operators" / "__init__.py"):
        init.write_text("")
    (fake / "core" / "a.py").write_text("def f():\n    from mlops_pack.operators import b\n")
    (fake / "operators" / "b.py").write_text("from mlops_pack.core import a\n")
    edges = graph(fake)
    assert "mlops_pack.core.a -> mlops_pack.operators.b" in upward(edges)
    assert "mlops_pack.core.a -> mlops_pack.operators.b -> mlops_pack.core.a" in circles(edges)
