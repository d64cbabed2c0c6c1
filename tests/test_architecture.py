"""The package's layout is its architecture: entry points at the root, rooms below, imports only downwards."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fer_lightning"
# A room imports from its own modules and from rooms of a lower rank only: data and models share a rank (neither
# imports the other); evaluation sits below training (a training run ends with evaluation's report).
RANKS = {"core": 0, "data": 1, "models": 1, "evaluation": 2, "training": 3, "serving": 4, "tools": 5}
ENTRY_POINTS = {
    "train",
    "eval",
    "predict",
    "export",
    "ensemble",
    "analyze",
    "bench",
    "leaderboard",
    "curves",
    "detection_bench",
    "serve",
    "serve_bench",
}


def modules(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every fer_lightning import in a file, also those inside functions and TYPE_CHECKING."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import; name the room"
            if node.module == "fer_lightning":  # from fer_lightning import <submodule or name>
                found += [(node.lineno, f"fer_lightning.{alias.name}") for alias in node.names]
            elif node.module:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name == "fer_lightning" or name.startswith("fer_lightning.")]


def room_of(module: str) -> str | None:
    """The room a dotted module name lies in, or None for the package root (entry points, __init__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in RANKS) else None


@pytest.mark.parametrize("path", modules(PACKAGE), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_room_imports_only_from_itself_and_the_rooms_below_it(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) == 1:
        return  # an entry point or the package's __init__: it may call into any room
    room = relative.parts[0]
    assert room in RANKS, f"{relative}: {room}/ is no room of {sorted(RANKS)}"
    wrong = []
    for line, module in imported(path):
        target = room_of(module)
        if target is None:
            wrong.append(f"line {line}: {module} (the package root holds entry points, not library code)")
        elif target != room and RANKS[target] >= RANKS[room]:
            wrong.append(f"line {line}: {module} ({target} is not below {room})")
    assert not wrong, f"{relative} imports upwards or sideways:\n" + "\n".join(wrong)


def test_the_package_root_holds_the_entry_points_and_nothing_else() -> None:
    root = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert root == ENTRY_POINTS
    assert {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"} == {
        *RANKS,
        "weights",
    }


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_an_entry_point_composes_and_calls_into_a_room(name: str) -> None:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    built = [  # main = entry_point("<name>", <a room's function>) (core/entry.py)
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["main"]
    ]
    if built:
        [call] = built
        assert isinstance(call, ast.Call) and getattr(call.func, "id", None) == "entry_point", name
        assert [getattr(a, "value", None) for a in call.args[:1]] == [name] and len(call.args) == 2, name
        assert not [node for node in tree.body if isinstance(node, ast.FunctionDef)], name
    else:
        [main] = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        assert main.name == "main" and len(main.body) == 1, f"{name}.py: main is one call into a room"
    assert not [node for node in tree.body if isinstance(node, ast.ClassDef)]
    assert all(room_of(module) for _, module in imported(PACKAGE / f"{name}.py"))
