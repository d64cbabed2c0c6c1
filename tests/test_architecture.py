"""The package's layout is its architecture: entry points at the root, subpackages below, imports only downwards; the
configs name only what the code that builds them may import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

PACKAGE = Path(__file__).resolve().parent.parent / "fer_lightning"
# A subpackage imports from its own modules and from subpackages of a lower rank only: data and models share a rank
# (neither imports the other); evaluation sits below training (a training run ends with evaluation's report).
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
            assert node.level == 0, f"{path}:{node.lineno}: a relative import; name the subpackage"
            if node.module == "fer_lightning":  # from fer_lightning import <submodule or name>
                found += [(node.lineno, f"fer_lightning.{alias.name}") for alias in node.names]
            elif node.module:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name == "fer_lightning" or name.startswith("fer_lightning.")]


def subpackage_of(module: str) -> str | None:
    """The subpackage a dotted module name lies in, or None for the package root (entry points, __init__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in RANKS) else None


@pytest.mark.parametrize("path", modules(PACKAGE), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_subpackage_imports_only_from_itself_and_the_subpackages_below_it(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) == 1:
        return  # an entry point or the package's __init__: it may call into any subpackage
    subpackage = relative.parts[0]
    assert subpackage in RANKS, f"{relative}: {subpackage}/ is no subpackage of {sorted(RANKS)}"
    wrong = []
    for line, module in imported(path):
        target = subpackage_of(module)
        if target is None:
            wrong.append(f"line {line}: {module} (the package root holds entry points, not library code)")
        elif target != subpackage and RANKS[target] >= RANKS[subpackage]:
            wrong.append(f"line {line}: {module} ({target} is not below {subpackage})")
    assert not wrong, f"{relative} imports upwards or sideways:\n" + "\n".join(wrong)


def test_the_package_root_holds_the_entry_points_and_nothing_else() -> None:
    root = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert root == ENTRY_POINTS
    assert {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"} == {
        *RANKS,
        "weights",
    }


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_an_entry_point_composes_and_calls_into_a_subpackage(name: str) -> None:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    built = [  # main = entry_point("<name>", <a subpackage's function>) (core/entry.py)
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
        assert main.name == "main" and len(main.body) == 1, f"{name}.py: main is one call into a subpackage"
    assert not [node for node in tree.body if isinstance(node, ast.ClassDef)]
    assert all(subpackage_of(module) for _, module in imported(PACKAGE / f"{name}.py"))


CONFIG_DIR = PACKAGE.parent / "conf"
# Which code builds what a config group names (its ``_target_``s): the lowest subpackage among those that build it. A
# command's own file (conf/<command>.yaml) is built by its entry point's subpackage.
GROUP_BUILDERS = {
    "hydra/default.yaml": "core",  # every command's Hydra settings and callbacks
    "hydra/launcher": "core",
    "paths": "core",
    "data": "data",  # training, analyze, and eval from a checkpoint's stored config
    "model": "models",  # training, and models/trained.py from a checkpoint's stored config
    "model_common": "models",
    "report": "evaluation",  # training's end-of-run report and eval
    "hydra/train.yaml": "training",
    "trainer": "training",
    "callbacks": "training",
    "logger": "training",
    "experiment": "training",
    "debug": "training",
    "hparams_search": "training",
    "predict": "serving",
}


def config_builder(relative: Path) -> str:
    """The subpackage whose code builds what ``conf/<relative>`` names."""
    if len(relative.parts) == 1:
        [task] = [m for _, m in imported(PACKAGE / f"{relative.stem}.py") if not m.startswith("fer_lightning.core.")]
        return subpackage_of(task)
    name = relative.as_posix()
    matches = [group for group in GROUP_BUILDERS if name == group or name.startswith(f"{group}/")]
    assert matches, f"conf/{name}: no builder known; add its group to GROUP_BUILDERS"
    return GROUP_BUILDERS[max(matches, key=len)]


def project_targets(node: object) -> list[str]:
    """Every ``fer_lightning.*`` ``_target_`` in a loaded YAML document."""
    if isinstance(node, dict):
        own = [node["_target_"]] if str(node.get("_target_", "")).startswith("fer_lightning.") else []
        return own + [t for value in node.values() for t in project_targets(value)]
    if isinstance(node, list):
        return [t for value in node for t in project_targets(value)]
    return []


@pytest.mark.parametrize(
    "config", sorted(CONFIG_DIR.rglob("*.yaml")), ids=lambda p: p.relative_to(CONFIG_DIR).as_posix()
)
def test_a_config_names_only_what_the_code_that_builds_it_may_import(config: Path) -> None:
    """A ``_target_`` is an import made by the code that instantiates the config: a config every command composes
    (conf/hydra/default.yaml) naming a tool would tie every command to the top subpackage, unseen by the import test."""
    relative = config.relative_to(CONFIG_DIR)
    builder = config_builder(relative)
    wrong = []
    for target in project_targets(yaml.safe_load(config.read_text())):
        module = target.rpartition(".")[0]
        owner = subpackage_of(module)
        if owner is None or RANKS[owner] > RANKS[builder]:
            wrong.append(f"{target} ({owner or 'the package root'} is above {builder}, which builds this config)")
    assert not wrong, f"conf/{relative.as_posix()} names:\n" + "\n".join(wrong)
