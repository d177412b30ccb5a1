"""The import graph points one way: each part of the package imports only parts below it.

The layers are those of ``docs/architecture.md``; every import statement counts, including
imports inside functions (which is where cycles hide) and those under ``TYPE_CHECKING``.
A new subpackage or top-level module must be given a layer here and in the docs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlflow_pairs"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"

#: Lowest first. A unit (a top-level module or subpackage of ``mlflow_pairs``) may import
#: itself and the units of lower layers, never a unit of its own layer or a higher one.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "_text", "defaults"),
    ("secrets", "_uris"),
    ("config",),
    ("data", "features", "screening"),
    ("model",),
    ("backtest",),
    ("hookspecs",),
    ("plugins", "default_plugins"),
    ("_packaging", "_mlflow_private", "_serving", "db"),
    ("flavor",),
    ("tracking",),
    ("jobs",),
    ("spark",),
    ("cli",),
    ("__main__",),
)

#: What any module may take from the package root: its version and the hook marker.
ROOT_NAMES = {"__version__", "hookimpl"}


def _rank() -> dict[str, int]:
    return {unit: level for level, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str) -> list[tuple[int, str]]:
    """(line, imported unit) of every import of the package in ``source``; ``""`` is the
    package root."""
    found: list[tuple[int, str]] = []
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, _unit(a.name)) for a in node.names if a.name == "mlflow_pairs"]
            found += [
                (node.lineno, _unit(a.name))
                for a in node.names
                if a.name.startswith("mlflow_pairs.")
            ]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, target] if target else base)
            if target == "mlflow_pairs":
                found += [(node.lineno, "" if a.name in ROOT_NAMES else a.name) for a in node.names]
            elif target.startswith("mlflow_pairs."):
                found.append((node.lineno, _unit(target)))
    return found


def violations(source: str, module: str) -> list[str]:
    """The imports of ``module`` (whose text is ``source``) that point sideways or up."""
    rank = _rank()
    unit = _unit(module)
    if unit == "":  # the package root re-exports the hook marker only
        return [
            f"{module}:{line} imports {target}"
            for line, target in imports_of(source, module)
            if target not in ("", "hookspecs")
        ]
    bad = []
    for line, target in imports_of(source, module):
        if target in ("", unit):
            continue
        if target not in rank:
            bad.append(f"{module}:{line} imports {target}, which has no layer")
        elif rank[target] >= rank[unit]:
            bad.append(
                f"{module}:{line} imports {target} (layer {rank[target]}) from {unit} "
                f"(layer {rank[unit]})"
            )
    return bad


def _modules() -> list[tuple[str, Path]]:
    return sorted(
        (_module_name(path), path)
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.relative_to(PACKAGE).parts
    )


def test_every_unit_has_a_layer() -> None:
    units = {_unit(module) for module, _ in _modules()} - {""}
    assert units - set(_rank()) == set(), "give each new module or subpackage a layer"


def test_no_import_points_sideways_or_up() -> None:
    found = [v for module, path in _modules() for v in violations(path.read_text(), module)]
    assert found == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("mlflow_pairs.data.panel", "from mlflow_pairs.plugins import get_universe", "plugins"),
        ("mlflow_pairs.model.hybrid", "def f():\n    import mlflow_pairs.flavor\n", "flavor"),
        ("mlflow_pairs.data.panel", "from mlflow_pairs import screening", "screening"),
        ("mlflow_pairs.config._loader", "from ..tracking import _uris", "tracking"),
        ("mlflow_pairs.backtest.engine", "from mlflow_pairs.nowhere import x", "no layer"),
    ],
)
def test_the_check_catches_upward_and_sideways_imports(
    module: str, source: str, expected: str
) -> None:
    found = violations(source, module)
    assert len(found) == 1
    assert expected in found[0]


def test_downward_imports_pass() -> None:
    assert violations("from mlflow_pairs.data import PricePanel", "mlflow_pairs.model.x") == []
    assert violations("from mlflow_pairs import __version__", "mlflow_pairs.flavor") == []
    assert violations("from . import engine", "mlflow_pairs.backtest.metrics") == []


def test_the_docs_list_the_same_layers() -> None:
    text = DOCS.read_text()
    table = re.findall(r"^\| (\d+) \| ([^|]+) \|", text, flags=re.M)
    documented = tuple(
        tuple(re.findall(r"`([\w.]+)`", units))
        for _, units in sorted(table, key=lambda r: int(r[0]))
    )
    assert documented == LAYERS
