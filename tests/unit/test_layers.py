"""The import contract between autoops's packages, checked on the source (AST), not by hand.

Each package's ``__init__`` docstring says what it may import; this test is that rule.
An import inside a function counts the same as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "autoops"
FOUNDATION = {"errors", "exits", "common", "__version__"}
"""What every layer may use: the error root, exit statuses, shared rules, the version."""

MAY_IMPORT: dict[str, set[str]] = {
    "exits": set(),
    "errors": {"exits"},
    "common": {"errors", "exits", "common"},
    "settings": FOUNDATION,
    "core": FOUNDATION | {"core"},
    "state": FOUNDATION | {"state"},
    "audit": FOUNDATION | {"audit", "state"},
    "guard": FOUNDATION | {"guard", "core", "state", "settings"},
    "secrets": FOUNDATION | {"secrets", "core", "settings"},
    "run": FOUNDATION | {"run"},
    "watch": FOUNDATION | {"watch"},
    "notify": FOUNDATION | {"notify", "state", "watch"},
    "lab": FOUNDATION | {"lab", "settings"},
    "heal": FOUNDATION | {"heal", "core"},
    "deploy": FOUNDATION | {"deploy", "core"},
    "frontdoors": FOUNDATION | {"frontdoors", "engine", "services", "core", "settings"},
    "setup": FOUNDATION | {"setup", "settings"},
    "services": FOUNDATION | {"services", "core", "guard", "state", "audit", "secrets", "run",
                              "settings", "watch", "notify", "setup", "heal", "deploy"},
    "engine": FOUNDATION | {"core", "guard", "state", "audit", "secrets", "run", "settings",
                            "services"},
    "cli": FOUNDATION | {"cli", "engine", "services", "settings", "core", "lab", "setup", "watch",
                         "frontdoors", "audit"},  # audit: the record types, for --type
    "node": FOUNDATION | {"core", "guard", "run", "settings"},  # an execution node's end
    "__main__": {"cli"},
}
"""Layer → the autoops layers it may import (``autoops.X`` names its first component)."""

ONLY_IN: dict[str, set[str]] = {
    "ansible_runner": {"run"},
    "argparse": {"cli"},
    "autoops.cli.render": {"cli"},
}
"""Third-party or internal modules only the named layers may import."""


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        yield ".".join(("autoops", *parts)), path


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__version__"


MODULES = list(_modules())


def test_every_module_belongs_to_a_layer() -> None:
    layers = {_layer(name) for name, _ in MODULES if name != "autoops"}
    assert layers <= set(MAY_IMPORT), f"no contract for {sorted(layers - set(MAY_IMPORT))}"


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[name for name, _ in MODULES])
def test_imports_respect_the_layers(module: str, path: Path) -> None:
    if module == "autoops":
        return
    layer = _layer(module)
    wrong = []
    for target in _imports(path):
        if target.startswith("autoops."):
            if target.split(".")[1] in {"__version__"} | set(MAY_IMPORT) and \
                    _layer(target) not in MAY_IMPORT[layer] | {layer}:
                wrong.append(target)
        elif target == "autoops" or target.startswith("autoops "):
            continue
        for guarded, allowed in ONLY_IN.items():
            if (target == guarded or target.startswith(guarded + ".")) and layer not in allowed:
                wrong.append(target)
    assert not wrong, f"{module} ({layer}) may not import {sorted(set(wrong))}"


def test_the_contract_catches_a_wrong_import(tmp_path: Path) -> None:
    """The checker itself: a core module importing the runner is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from autoops.run import runner\nimport argparse\n")
    found = set(_imports(bad))
    assert "autoops.run.runner" in found
    assert _layer("autoops.run.runner") not in MAY_IMPORT["core"]
    assert "argparse" in found
