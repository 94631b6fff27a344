"""End to end in a real browser: the tutorial notebook 02 in JupyterLab + Chromium.

Starts ``jupyter lab`` on 127.0.0.1 (random port, token, temporary root/config/runtime/settings
folders, the default kernel auto-started, news and update checks off), opens a copy of
``notebooks/02_training_set.ipynb`` (with ``tutorial.py`` beside it, and parameters injected after its
``parameters`` cell: a small synthetic cell, and no simulated annotator, so that the set holds only
what the mouse does) with Playwright in Debian's Chromium, runs all cells, clicks a tile on the
TileSelector's canvas and drags a brush stroke on the MaskPainter's canvas with the mouse, then
checks the training set autosaved on disk. A screenshot goes to ``$TOMOWIDGETS_ARTIFACTS`` (default
``tests/artifacts/``).

Needs: ``pip install jupyterlab playwright`` and ``apt-get install -y chromium`` (Playwright's own
browser download is not used). Set ``TOMOWIDGETS_CHROMIUM`` to use another Chromium binary.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from labserver import CHROMIUM_ARGS, chromium, missing, run_all, serve, wait_for

from tomowidgets import TrainingSet

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent.parent / "notebooks"
NOTEBOOK = NOTEBOOKS / "02_training_set.ipynb"
#: Injected after the notebook's parameters cell: a 32 x 128 x 128 cell (the middle slice is z = 16)
#: and no tiles from the ground truth, so the autosaved set holds exactly the test's tile and stroke.
PARAMETERS = {"SHAPE": (32, 128, 128), "FEATURE": "membrane", "FILL_FROM_GROUND_TRUTH": False}
#: Notebook 03 (training) with one feature and far more epochs than the test waits for: only Stop
#: can end its run in time.
TRAIN_NOTEBOOK = NOTEBOOKS / "03_train.ipynb"
TRAIN_PARAMETERS = {"SHAPE": (32, 128, 128), "FEATURES": ["membrane"], "EPOCHS": 400}
SAVED = "project/membrane.tiles.npz"
SELECTOR_CELL, PAINTER_CELL = "TileSelector(pre", "MaskPainter(ts"  # text of the widgets' cells
pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing() is not None, reason=str(missing()))]


def write_with_parameters(source: Path, target: Path, params: dict) -> None:
    """Copy a notebook, inserting a cell that sets `params` after its cell tagged ``parameters``."""
    import nbformat  # comes with jupyterlab, which the skip condition checks

    nb = nbformat.read(source, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    for name in params:
        assert f"\n{name} = " in "\n" + nb.cells[index].source, f"{source.name} has no parameter {name}"
    cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()),
                                     metadata={"tags": ["injected-parameters"]})
    cell.id = "injected-parameters"
    nb.cells.insert(index + 1, cell)
    nbformat.write(nb, target)


@pytest.fixture
def jupyter_lab(tmp_path):
    """A JupyterLab server serving copies of notebooks 02 and 03; yields (url, token, root)."""
    root = tmp_path / "root"
    root.mkdir()
    write_with_parameters(NOTEBOOK, root / NOTEBOOK.name, PARAMETERS)
    write_with_parameters(TRAIN_NOTEBOOK, root / TRAIN_NOTEBOOK.name, TRAIN_PARAMETERS)
    shutil.copy(NOTEBOOKS / "tutorial.py", root / "tutorial.py")
    with serve(root, tmp_path) as (url, token):
        yield url, token, root


def _bring_into_view(canvas) -> None:
    """Centre `canvas` in the notebook and focus it, so that no later scroll moves it.

    ipycanvas focuses the canvas on mouse down *before* it reads the event's position; focusing a
    partly hidden canvas scrolls the notebook. The widgets cope (the test below), but a stroke
    pressed while the page scrolls is refused, so this test starts from a still page.
    """
    canvas.evaluate("c => c.scrollIntoView({block: 'center', inline: 'nearest'})")
    canvas.focus()
    canvas.page.wait_for_timeout(100)


def _load(path: Path) -> TrainingSet | None:
    try:
        return TrainingSet.load(path)
    except (FileNotFoundError, ValueError):
        return None


def test_click_a_tile_and_paint_its_mask_in_jupyterlab(jupyter_lab):
    from playwright.sync_api import sync_playwright

    url, token, root = jupyter_lab
    saved = root / SAVED
    artifacts = Path(os.environ.get("TOMOWIDGETS_ARTIFACTS") or HERE.parent / "artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
        page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}")
                if msg.type == "error" else None)
        try:
            selector_cell, painter_cell = _open_and_run_all(page, url, token)
            selector_canvas = selector_cell.locator(".jp-OutputArea-output canvas").last
            painter_canvas = painter_cell.locator(".jp-OutputArea-output canvas").last
            _bring_into_view(selector_canvas)

            # 1. click the middle of the 128² slice: a positive tile centred at (y, x) = (64, 64)
            box = selector_canvas.bounding_box()
            page.mouse.click(box["x"] + box["width"] * 64.5 / 128, box["y"] + box["height"] * 64.5 / 128)
            ts = wait_for(lambda: (t := _load(saved)) is not None and len(t) == 1 and t,
                           30, f"the tile in {saved}", page)
            assert ts.kinds == ("positive",)
            assert tuple(ts.centres[0]) == (16, 64, 64)
            assert ts.unpainted == (0,)       # a placeholder disk, marked: never trained on (#20, 2)
            placeholder = ts.mask(0).copy()
            page.wait_for_timeout(300)
            selector_cell.locator(".jp-OutputArea").screenshot(path=str(artifacts / "e2e_selector.png"))

            # 2. drag the brush along tile row 10, columns 6..50, on the painter's image panel
            _bring_into_view(painter_canvas)
            box = painter_canvas.bounding_box()
            width, height = painter_canvas.evaluate("c => [c.width, c.height]")
            zoom = height / 64  # canvas pixels per tile pixel

            def at(row: float, col: float) -> tuple[float, float]:
                return (box["x"] + col * zoom * box["width"] / width,
                        box["y"] + row * zoom * box["height"] / height)

            page.mouse.move(*at(10.5, 6.5))
            page.mouse.down()
            page.mouse.move(*at(10.5, 50.5), steps=12)
            page.mouse.up()
            ts = wait_for(lambda: (t := _load(saved)) is not None and t.mask(0)[10, 6:51].all() and t,
                           30, "the painted stroke in the autosaved set", page)
            mask = ts.mask(0)
            assert not placeholder[10, 6:51].any() and ts.unpainted == ()
            # the first stroke replaced the placeholder: on disk is the stroke and nothing else
            assert mask.sum() >= 45 and not (mask & placeholder).any()
            assert not mask[20:28, 0:20].any() and not mask[14:, :].any()  # radius 3 about row ~10.5

            # 3. `u` in the selector must not throw the painted tile away (#20, 3)
            _bring_into_view(selector_canvas)
            page.keyboard.press("u")
            wait_for(lambda: "undo stops at tile 0" in selector_cell.inner_text(), 30,
                      "the selector saying why undo stops", page)
            after = _load(saved)
            assert after is not None and len(after) == 1 and np.array_equal(after.mask(0), mask)
            page.wait_for_timeout(300)
            statuses = painter_cell.locator(".jp-OutputArea-output").all_inner_texts()
            assert not any("⚠" in text for text in statuses), statuses
        finally:
            page.screenshot(path=str(artifacts / "e2e.png"), full_page=True)
            browser.close()
    assert not [m for m in console if m.startswith("pageerror")], console
    assert np.array_equal(ts.centres, [[16, 64, 64]])


def _open_and_run_all(page, url: str, token: str):
    """Open notebook 02, run all its cells; returns the selector's and the painter's cells."""
    cells = run_all(page, url, token, NOTEBOOK)
    selector_cell = cells.filter(has=page.locator(".jp-InputArea", has_text=SELECTOR_CELL))
    painter_cell = cells.filter(has=page.locator(".jp-InputArea", has_text=PAINTER_CELL))
    painter_cell.locator(".jp-OutputArea-output canvas").last.wait_for(state="visible", timeout=60_000)
    return selector_cell, painter_cell


def _half_hidden(canvas) -> None:
    """Scroll the notebook so the top third of `canvas` is above the window, and unfocus it."""
    canvas.evaluate("""c => {
        c.scrollIntoView({block: 'start'});
        let s = c.parentElement;
        while (s && s.scrollHeight <= s.clientHeight) { s = s.parentElement; }
        s.scrollTop += c.getBoundingClientRect().height / 3;
        document.activeElement && document.activeElement.blur();
    }""")
    canvas.page.wait_for_timeout(300)
    assert not canvas.evaluate("c => c === document.activeElement")


def test_a_click_on_a_partly_hidden_canvas_adds_the_tile_aimed_at(jupyter_lab):
    """#20, 1: focusing the canvas on mouse down scrolls the notebook before ipycanvas reads the
    position; the tile must still be the one under the pointer (and the hover readout) when pressed."""
    from playwright.sync_api import sync_playwright

    url, token, root = jupyter_lab
    saved = root / SAVED
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            selector_cell, _ = _open_and_run_all(page, url, token)
            canvas = selector_cell.locator(".jp-OutputArea-output canvas").last
            _half_hidden(canvas)
            box = canvas.bounding_box()
            aim = (box["x"] + box["width"] * 40.5 / 128, box["y"] + box["height"] * 90.5 / 128)
            page.mouse.move(*aim)
            readout = selector_cell.locator(".jp-OutputArea-output", has_text="voxel")
            wait_for(lambda: "x 40 · y 90 · z 16 voxel" in readout.last.inner_text(), 30,
                      "the hover readout at the aimed voxel", page)
            page.mouse.down()
            page.mouse.up()
            ts = wait_for(lambda: (t := _load(saved)) is not None and len(t) == 1 and t,
                           30, f"the tile in {saved}", page)
            moved = canvas.bounding_box()["y"] - box["y"]
        finally:
            browser.close()
    assert abs(moved) > 20, "the press did not scroll the notebook: this test checks nothing"
    assert tuple(ts.centres[0]) == (16, 90, 40)


def test_canvases_are_drawn_pixel_for_pixel_and_the_slice_fits_with_its_controls(jupyter_lab):
    """#20, 4: canvases were stretched to the notebook's width (a 512 px slice drawn 833-1,473 px
    tall, blurred by non-integer resampling), so the slice, its z slider and its status line were
    never on screen together."""
    from playwright.sync_api import sync_playwright

    url, token, _ = jupyter_lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        try:
            selector_cell, painter_cell = _open_and_run_all(page, url, token)
            sizes = {}
            for name, cell in (("selector", selector_cell), ("painter", painter_cell)):
                for i, canvas in enumerate(cell.locator(".jp-OutputArea-output canvas").all()):
                    box = canvas.bounding_box()
                    width, height = canvas.evaluate("c => [c.width, c.height]")
                    sizes[f"{name} {i}"] = (box["width"], box["height"], width, height)
            canvas = selector_cell.locator(".jp-OutputArea-output canvas").last
            canvas.evaluate("c => c.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(300)
            slider = selector_cell.locator(".widget-slider").first
            status = selector_cell.locator(".jp-OutputArea-output .widget-html").last
            boxes = {"slice": canvas.bounding_box(), "z slider": slider.bounding_box(),
                     "status line": status.bounding_box()}
            readout = selector_cell.locator(".widget-html-content", has_text="Å/voxel").first
            readout_text, (text_width, shown_width) = readout.inner_text(), readout.evaluate(
                "e => [e.scrollWidth, e.clientWidth]")
        finally:
            browser.close()
    for name, (css_w, css_h, px_w, px_h) in sizes.items():
        assert (round(css_w), round(css_h)) == (px_w, px_h), f"{name}: {px_w}×{px_h} px drawn " \
            f"{css_w:.0f}×{css_h:.0f}"
    for name, box in boxes.items():
        assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= 800, (name, box)
    # #20, 9: the contrast slider's own readout was cut off; ours must show its whole text
    assert "black" in readout_text and text_width <= shown_width, (readout_text, text_width, shown_width)


def test_stop_ends_the_run_that_run_all_waits_for(jupyter_lab):
    """#20, 5: notebook 03's own flow waits for training in a cell; Stop was queued behind that
    cell (ignored for minutes). It must end the run after the current batch, and "Run All" must go
    on with the network trained so far."""
    from playwright.sync_api import sync_playwright

    url, token, root = jupyter_lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        try:
            cells = run_all(page, url, token, TRAIN_NOTEBOOK)
            monitor = cells.filter(has=page.locator(".jp-InputArea", has_text="TrainingMonitor(nets"))
            waiting = "for feature, monitor in monitors.items()"   # the cell that waits for training
            waiter = cells.filter(has=page.locator(".jp-InputArea", has_text=waiting))
            last = cells.last
            wait_for(lambda: "epoch 3/400" in monitor.inner_text() or "epoch 4/400" in
                      monitor.inner_text(), 240, "three epochs of training", page)
            monitor.get_by_role("button", name="Stop").click()
            clicked = time.monotonic()
            wait_for(lambda: "(stopped) -> membrane.keras" in waiter.inner_text(), 60,
                      "the waiting cell to end with the stopped run", page)
            stopped_after = time.monotonic() - clicked
            wait_for(lambda: "amplitude" in last.inner_text(), 120, "the notebook's last cell", page)
            epochs = monitor.inner_text()
        finally:
            browser.close()
    assert stopped_after < 30, f"Stop took {stopped_after:.0f} s"
    assert "epoch 400/400" not in epochs
    assert (root / "project" / "membrane.keras").is_file()
