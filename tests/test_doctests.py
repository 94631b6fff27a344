"""The docstring examples of every module run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import tomowidgets

#: Modules whose import needs TensorFlow configured first (the network imports them lazily).
NEEDS_TENSORFLOW = {"tomowidgets.network._fftconv"}
MODULES = sorted(m.name for m in pkgutil.walk_packages(tomowidgets.__path__, "tomowidgets.")
                 if m.name not in NEEDS_TENSORFLOW)


def test_every_package_is_searched():
    assert {"tomowidgets.io", "tomowidgets.engine._fftengine", "tomowidgets.merge._merge",
            "tomowidgets._rotation", "tomowidgets.widgets._geometry"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)              # examples that write files write them here
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name, globs={"np": np})
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        test.globs = {**module.__dict__, **test.globs}
        runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} docstring examples in {name} failed (output above)"
