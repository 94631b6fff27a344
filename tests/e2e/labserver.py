"""A JupyterLab server and a headless Chromium for the browser tests and benchmarks.

Used by ``tests/e2e/test_browser_e2e.py`` and ``benchmarks/browser_latency.py``. The server runs on
127.0.0.1 (random port, token, temporary config/runtime/settings folders, the default kernel
auto-started, news and update checks off). Chromium is Debian's (``apt-get install -y chromium``;
Playwright's own browser download is not used); ``TOMOWIDGETS_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
SETTINGS = {  # JupyterLab user settings: no kernel dialog, no requests to the internet
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True,
                                                                   "windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


def chromium() -> str | None:
    chosen = os.environ.get("TOMOWIDGETS_CHROMIUM")
    if chosen:
        return chosen if Path(chosen).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright)"
    if importlib.util.find_spec("jupyterlab") is None:
        return "jupyterlab is not installed (pip install jupyterlab)"
    if chromium() is None:
        return ("Debian's chromium is not installed (apt-get install -y chromium), or "
                "TOMOWIDGETS_CHROMIUM does not name a file")
    return None



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
        return json.loads(response.read())


@contextmanager
def serve(root: Path, work: Path, *, python: str = sys.executable,
          user_settings: dict | None = None) -> Iterator[tuple[str, str]]:
    """Run JupyterLab from `python` on `root` (its state and log in `work`); yields ``(url, token)``.

    `user_settings` (default :data:`SETTINGS`) are written as the user's JupyterLab settings; pass
    ``{}`` to rely on the environment's own (Binder's ``overrides.json``).

    Raises RuntimeError if the server exits or does not answer within 60 s, or does not start the
    default kernel by itself (the settings were ignored).
    """
    settings = work / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    for name, values in (SETTINGS if user_settings is None else user_settings).items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(work / "config"),
               JUPYTER_RUNTIME_DIR=str(work / "runtime"), JUPYTER_DATA_DIR=str(work / "data"),
               IPYTHONDIR=str(work / "ipython"), JUPYTER_PLATFORM_DIRS="1",
               PYTHONWARNINGS="ignore")
    port, token = _free_port(), secrets.token_hex(16)
    log_path = work / "jupyter.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [python, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", "--allow-root", f"--IdentityProvider.token={token}",
         "--LabApp.extension_manager=readonly",
         f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
         f"--LabApp.workspaces_dir={work / 'workspaces'}", "--LabApp.expose_app_in_browser=True"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {server.returncode}:\n{log_path.read_text()}")
            try:
                _get(f"{url}/api/status?token={token}")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not answer within 60 s:\n"
                                       + log_path.read_text()) from None
                time.sleep(0.3)
        tracker = _get(f"{url}/lab/api/settings/@jupyterlab/notebook-extension:tracker?token={token}")
        # the user's setting, else the schema's default (where overrides.json puts its values)
        default = tracker["schema"]["properties"]["autoStartDefaultKernel"]["default"]
        if tracker["settings"].get("autoStartDefaultKernel", default) is not True:
            raise RuntimeError("JupyterLab would not start the default kernel by itself: the user "
                               "settings or overrides.json were not applied")
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()


def wait_for(predicate, timeout: float, what: str, page=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(200)
        else:
            time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_all(page, url: str, token: str, notebook: Path):
    """Open `notebook` and run all its cells ("Run All"); returns the code cells' locator."""
    page.goto(f"{url}/lab/tree/{notebook.name}?token={token}", timeout=60_000)
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const ctx = w && w.sessionContext;
            return ctx && ctx.session && ctx.session.kernel && ctx.kernelDisplayStatus === 'idle';
        }""", timeout=60_000)
    # not awaited: the command's promise resolves only when the last cell has run
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    return page.locator(".jp-Notebook .jp-CodeCell")


