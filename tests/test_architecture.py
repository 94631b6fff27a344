"""The import rules of ARCHITECTURE.md hold: they are read off the source, so a change that breaks
one fails here, not in a user's notebook."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tomowidgets"
#: The display layer and the front ends: everything else is core.
DISPLAY = ("tomowidgets.widgets", "tomowidgets.plots", "tomowidgets.cli", "tomowidgets.demo")
#: What core code must never import (at any depth, lazily included).
DISPLAY_LIBRARIES = ("ipycanvas", "ipywidgets", "matplotlib", "IPython")
#: Where TensorFlow and Keras may be imported (lazily): the network package only.
TENSORFLOW_HOME = "tomowidgets.network"
#: Step packages, each the only importer of its private modules.
STEPS = ("preprocess", "synthetic", "trainset", "network", "engine", "apply", "merge", "particles",
         "average", "widgets")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at module level or inside functions, as absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:   # relative: resolve against this module's package
                package = module_name(path).split(".")
                if path.name != "__init__.py":
                    package = package[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + [node.module])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_rules_see_the_whole_package():
    assert len(MODULES) > 50 and "tomowidgets.engine._fftengine" in MODULES


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not within(m, DISPLAY)))
def test_core_never_imports_the_display_layer(module):
    bad = sorted(i for i in MODULES[module] if within(i, DISPLAY + DISPLAY_LIBRARIES))
    assert not bad, f"{module} (core) imports {bad}; move the display code to widgets/ or plots.py"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_tensorflow_only_under_network(module):
    bad = sorted(i for i in MODULES[module] if within(i, ("tensorflow", "keras")))
    assert within(module, TENSORFLOW_HOME) or not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_private_modules_are_imported_only_by_their_own_package(module):
    bad = []
    for name in MODULES[module]:
        parts = name.split(".")
        if len(parts) >= 3 and parts[0] == "tomowidgets" and parts[1] in STEPS \
                and parts[2].startswith("_") and not within(module, f"tomowidgets.{parts[1]}"):
            bad.append(name)
    assert not bad, f"{module} imports private {sorted(bad)}; import the package's public name"


def test_the_top_level_keeps_at_most_four_private_modules():
    private = sorted(p.name for p in PACKAGE.glob("_*.py") if p.name != "__init__.py")
    assert len(private) <= 4, private


def test_each_step_is_a_package():
    for step in STEPS:
        assert (PACKAGE / step / "__init__.py").is_file(), step
        assert not (PACKAGE / f"{step}.py").exists(), step


def test_importing_tomowidgets_imports_neither_tensorflow_nor_matplotlib():
    code = ("import sys, tomowidgets, tomowidgets.engine, tomowidgets.network.netfile; "
            "bad = [m for m in ('tensorflow', 'keras', 'matplotlib', 'ipycanvas') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
