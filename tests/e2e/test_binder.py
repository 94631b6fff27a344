"""Binder: build the environment from ``binder/`` as mybinder.org does, then open notebook 00.

repo2docker (mybinder.org) clones the repository, installs ``binder/requirements.txt`` with pip into
the Python that ``binder/runtime.txt`` names, runs ``binder/postBuild`` from the repository root and
starts JupyterLab. This test does the same in a fresh virtual environment, on a copy of the files
git would clone, so that a requirement that does not resolve, a ``postBuild`` step that fails, a
JupyterLab setting that is not applied or a notebook that cannot start fails here rather than on
mybinder.org. It then opens the quick-start notebook in Chromium, as a Binder user would land on it,
and runs its first cells (parameters, imports, the synthetic cell that ``postBuild`` made); a
screenshot goes to ``$TOMOWIDGETS_ARTIFACTS`` (default ``tests/artifacts/``).

It needs the package index, as CI's own install does (pip's cache makes the second install quick),
and is skipped when the index cannot be reached.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from labserver import CHROMIUM_ARGS, chromium, missing, serve, wait_for

REPO = Path(__file__).resolve().parents[2]
#: Code cells of notebook 00 run in the browser: parameters, imports, preprocess (which uses the
#: synthetic cell postBuild made).
FIRST_CELLS = 3


def _index_unreachable() -> str | None:
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "ipykernel"],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "the package index did not answer within 60 s"
    return None if done.returncode == 0 else f"the package index cannot be reached: {done.stderr[-300:]}"


def _skip_reason() -> str | None:
    if missing() is not None:
        return missing()
    if shutil.which("git") is None or not (REPO / ".git").exists():
        return "not a git checkout: the files Binder would clone are unknown"
    return _index_unreachable()


pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _clone_files(target: Path) -> None:
    """Copy the files a clone of this checkout would hold (tracked, plus new ones git would add)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _run(command: list[str], cwd: Path, env: dict, timeout: float, what: str) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{output[-3000:]}"
    return output


def test_binder_environment_builds_and_opens_the_quick_start(tmp_path):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    runtime = (REPO / "binder" / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-"), f"binder/runtime.txt should name a Python, got {runtime!r}"
    version = runtime.removeprefix("python-")
    python = sys.executable if f"{sys.version_info[0]}.{sys.version_info[1]}" == version \
        else shutil.which(f"python{version}")
    if python is None:
        pytest.skip(f"binder/runtime.txt asks for Python {version}, which this machine lacks")

    repo, venv = tmp_path / "repo", tmp_path / "env"
    _clone_files(repo)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(venv),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run(["pip", "install", "-q", "-r", "binder/requirements.txt"], repo, env, 1500,
         "pip install -r binder/requirements.txt")
    _run(["bash", "binder/postBuild"], repo, env, 600, "binder/postBuild")

    _run(["pip", "check"], repo, env, 120, "pip check (conflicting requirements)")
    listed = _run(["python", "-c", "import importlib.metadata as m\nfor d in m.distributions(): "
                   "print(d.name)"], repo, env, 60, "listing the environment")
    distributions = {re.sub(r"[-_.]+", "-", name).lower() for name in listed.split()}
    assert "tensorflow-cpu" in distributions and "tensorflow" not in distributions, \
        "Binder must install exactly one TensorFlow distribution (tensorflow-cpu)"
    assert (repo / "notebooks" / "project" / "cell" / "tomogram.mrc").is_file(), \
        "postBuild did not write the demo cell the notebooks use"

    from playwright.sync_api import sync_playwright

    # no user settings: the kernel must start by itself through postBuild's overrides.json
    with serve(repo / "notebooks", tmp_path / "lab", python=str(venv / "bin" / "python"),
               user_settings={}) as (url, token), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        try:
            page.goto(f"{url}/lab/tree/00_quickstart.ipynb?token={token}", timeout=60_000)
            page.wait_for_function(
                """() => {
                    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                    const ctx = w && w.sessionContext;
                    return ctx && ctx.session && ctx.session.kernel && ctx.kernelDisplayStatus === 'idle';
                }""", timeout=120_000)
            assert page.locator(".jp-Dialog").count() == 0, "a dialog asked something on opening"
            page.evaluate("""async (n) => {
                const notebook = window.jupyterapp.shell.currentWidget.content;
                const code = notebook.widgets.map((c, i) => [c, i]).filter(([c]) => c.model.type === 'code');
                for (const [, i] of code.slice(0, n)) {
                    notebook.activeCellIndex = i;
                    await window.jupyterapp.commands.execute('notebook:run-cell');
                }
            }""", FIRST_CELLS)
            results = wait_for(lambda: page.evaluate("""(n) => {
                const notebook = window.jupyterapp.shell.currentWidget.content;
                const code = notebook.widgets.filter(c => c.model.type === 'code').slice(0, n);
                if (code.some(c => !c.model.executionCount)) { return null; }
                return code.map(c => c.model.outputs.toJSON());
            }""", FIRST_CELLS), 300, "notebook 00's first cells to run", page)
            artifacts = Path(os.environ.get("TOMOWIDGETS_ARTIFACTS") or REPO / "tests" / "artifacts")
            artifacts.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(artifacts / "binder_quickstart.png"))
        finally:
            browser.close()
    errors = [o for outputs in results for o in outputs if o["output_type"] == "error"]
    assert not errors, errors
    printed = "".join("".join(o.get("text", "")) for outputs in results for o in outputs)
    assert "Project(" in printed and "preprocessed" in printed, printed[-500:]
