"""The package's floors: each module imports only from its own floor or the ones below."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "qa"

# Lowest first. The package's __init__ re-exports the public names lazily and is left out.
FLOORS = {
    "qa.config": 0, "qa.errors": 0,
    "qa.index": 1,
    "qa.search": 2,
    "qa.library": 3,
    "qa.server": 4, "qa.eval": 4,
    "qa.cli": 5,
}


def floor(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        found = FLOORS.get(".".join(parts[:n]))
        if found is not None:
            return found
    raise AssertionError(f"{module} belongs to no floor; add it to FLOORS")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "qa":
                names |= {f"qa.{a.name}" for a in node.names if a.name != "__version__"}
            elif node.module.startswith("qa."):
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("qa.")}
    return names


def test_no_module_imports_upward():
    upward = []
    modules = [p for p in ROOT.rglob("*.py") if p != ROOT / "__init__.py"]
    assert len(modules) > 30
    for path in modules:
        name = module_name(path)
        for target in imports(path):
            if floor(target) > floor(name):
                upward.append(f"{name} (floor {floor(name)}) imports {target} "
                              f"(floor {floor(target)})")
    assert upward == []


def test_the_floor_check_sees_an_upward_import(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from qa.server.api import create_app\n")
    assert imports(bad) == {"qa.server.api"}
    assert floor("qa.server.api") > floor("qa.index.build")
