"""Registers the ``browser`` marker for the end-to-end tests in this folder.

The lead may also list it in pyproject's ``[tool.pytest.ini_options] markers``; registering it twice
is harmless.
"""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: drives JupyterLab in a real Chromium (skipped when chromium, playwright "
        "or jupyterlab is missing)")
