"""TrainingMonitor: train a FeatureNet from the notebook, watching its loss and its output."""

from __future__ import annotations

import asyncio
import html
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np

from tomowidgets._validate import check_positive_int
from tomowidgets.network import check_training_options
from tomowidgets.widgets._display import encode_png, to_uint8
from tomowidgets.widgets._gallery import tile_grid, to_display
from tomowidgets.widgets._plots import loss_png
from tomowidgets.widgets._status import StatusLine

if TYPE_CHECKING:
    from tomowidgets.network import FeatureNet, Reliability
    from tomowidgets.trainset import TrainingSet

__all__ = ["TrainingMonitor"]

_GAP = 4
_PREVIEW_PX = 96  # a preview tile is magnified to about this many pixels


class TrainingMonitor(widgets.VBox):
    """Train a :class:`~tomowidgets.FeatureNet` with controls, a live loss curve and live outputs.

    The hyper-parameters of :meth:`FeatureNet.train <tomowidgets.FeatureNet.train>` are controls;
    **Train** starts a run in a background thread (the notebook stays responsive) and **Stop** ends
    it after the current batch (``net.stop_training = True``). After each epoch the loss curve is
    redrawn and the network's raw output on a few training tiles is shown next to their images and
    masks, black to white from 0 to the output's maximum (at most every `refresh` seconds, and always
    after the last epoch). Every run is kept in
    :attr:`runs` and drawn in its own colour, its settings in the legend, so settings can be
    compared; tick *from scratch* to restart from the initial weights, else a run continues from
    the current ones. Errors and warnings of a run (e.g. "learned nothing") go to the status line.
    **Check** judges the trained network on tiles it did not train on
    (:func:`~tomowidgets.network.check_reliability`: a second network trained on 80 % of the tiles
    from another seed, scored on the rest) and shows the report, with advice, below the plots.

    Parameters
    ----------
    net : FeatureNet
        Trained in place.
    trainset : TrainingSet or tuple (x, y)
        The annotated tiles (read when a run starts, so tiles added meanwhile are used).
    epochs, batch_size, learning_rate, decay, l1, copies
        Initial values of the controls (see ``FeatureNet.train``); ``copies=None`` balances the
        positives against the negatives (the control shows 0).
    n_preview : int, default 4
        Training tiles whose output is shown (positives first, then negatives).
    refresh : float, default 0.5
        Shortest time in seconds between two redraws during a run.
    seed : int, optional
        Seed of augmentation and batch order (default the network's).
    engine : {'fft', 'keras'}, default 'fft'
        Gradient engine of ``FeatureNet.train``.
    **train_options
        Other keywords passed unchanged to every ``FeatureNet.train`` call.

    Raises
    ------
    ValueError
        If `train_options` holds ``callbacks``, ``progress`` or ``reset`` (the monitor sets them).

    Attributes
    ----------
    runs : list of dict
        One per run: ``settings`` (the controls' values), ``history`` (per-epoch ``loss``,
        ``learning_rate``, ``time``; filled live), ``start`` (epochs before the run),
        ``status`` ('running', 'done', 'stopped', 'failed') and ``error`` (str or None).
    n_plots : int
        Loss plots drawn so far.
    n_previews : int
        Output previews drawn so far.

    Notes
    -----
    Python < 3.14 has one warnings filter list for all threads, so while a run is in progress the
    warnings of other threads are recorded with the run's (and shown in its status line) instead of
    being printed; training itself never prints (no progress bar).

    Examples
    --------
    >>> monitor = TrainingMonitor(net, ts)                  # doctest: +SKIP
    >>> monitor.epochs.value = 5; monitor.train()           # doctest: +SKIP
    >>> monitor.runs[-1]["history"]["loss"]                 # doctest: +SKIP
    """

    def __init__(self, net: FeatureNet, trainset: TrainingSet | tuple, *, epochs: int = 20,
                 batch_size: int = 20, learning_rate: float = 0.01, decay: float = 0.9,
                 l1: float = 1e-5, copies: int | None = None, n_preview: int = 4,
                 refresh: float = 0.5, seed: int | None = None, engine: str = "fft",
                 **train_options: Any) -> None:
        super().__init__()
        clash = sorted(set(train_options) & {"callbacks", "progress", "reset"})
        if clash:
            raise ValueError(f"{clash} cannot be passed: the monitor sets them (callbacks: use "
                             "on_epoch(); reset: the 'from scratch' checkbox)")
        self.train_options = dict(train_options)
        self.net, self.trainset = net, trainset
        self.n_preview = check_positive_int(n_preview, "n_preview")
        self.refresh, self.seed, self.engine = float(refresh), seed, engine
        self.n_plots = self.n_previews = 0
        self._runs: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._epoch_callbacks: list[Callable[[int, dict], Any]] = []
        self._last_draw = 0.0

        self.status = StatusLine()
        guard = self.status.guard
        style = {"description_width": "initial"}
        small = widgets.Layout(width="170px")
        self.epochs = widgets.BoundedIntText(value=epochs, min=1, max=100_000, description="epochs",
                                             style=style, layout=small)
        self.batch_size = widgets.BoundedIntText(value=batch_size, min=1, max=100_000,
                                                 description="batch size", style=style, layout=small)
        self.learning_rate = widgets.FloatLogSlider(value=learning_rate, base=10, min=-5, max=0,
                                                    step=0.1, description="learning rate",
                                                    readout_format=".2g", style=style)
        self.decay = widgets.FloatSlider(value=decay, min=0.5, max=1.0, step=0.01,
                                         description="decay / epoch", style=style)
        self.l1 = widgets.BoundedFloatText(value=l1, min=0.0, max=1.0, step=1e-6, description="L1",
                                           style=style, layout=small)
        self.copies = widgets.BoundedIntText(value=0 if copies is None else copies, min=0, max=10_000,
                                             description="copies (0: balance)", style=style,
                                             layout=widgets.Layout(width="200px"))
        self.reset = widgets.Checkbox(value=False, description="from scratch", indent=False,
                                      tooltip="start from the initial weights (else continue)")
        self.train_button = widgets.Button(description="Train", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop",
                                          disabled=True)
        self.train_button.on_click(guard(lambda _: self.start()))
        self.stop_button.on_click(guard(lambda _: self.stop()))
        self.check_button = widgets.Button(
            description="Check", icon="check", disabled=not net.history["loss"],
            tooltip="judge the network on tiles it did not train on (trains a second network on "
                    "80 % of the tiles; as long as a run)")
        self.check_button.on_click(guard(lambda _: self.start_check()))
        self.report = widgets.HTML(_report_html(net.reliability) if net.reliability else "")
        self.progress = widgets.HTML()
        self.plot = widgets.Image(format="png")
        self.preview = widgets.Image(format="png")
        self.caption = widgets.HTML()
        self.children = [
            widgets.HBox([self.epochs, self.batch_size, self.l1, self.copies]),
            widgets.HBox([self.learning_rate, self.decay]),
            widgets.HBox([self.train_button, self.stop_button, self.check_button, self.reset,
                          self.progress]),
            # flex-start: a stretched box would draw the 480×256 px loss plot 547 px tall
            widgets.HBox([self.plot, widgets.VBox([self.caption, self.preview])],
                         layout=widgets.Layout(align_items="flex-start")),
            self.report,
            self.status,
        ]
        guard(self._draw)(final=True)

    # -- state ---------------------------------------------------------------------------------
    @property
    def runs(self) -> list[dict[str, Any]]:
        """The runs so far, oldest first (see the class's Attributes)."""
        return list(self._runs)

    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def settings(self) -> dict[str, Any]:
        """The controls' values as ``FeatureNet.train`` keywords (``copies`` 0 becomes None).

        Raises
        ------
        ValueError
            If a value is out of range (the message names it).
        """
        s = {"epochs": int(self.epochs.value), "batch_size": int(self.batch_size.value),
             "learning_rate": float(self.learning_rate.value), "decay": float(self.decay.value),
             "l1": float(self.l1.value), "copies": int(self.copies.value) or None,
             "reset": bool(self.reset.value)}
        check_training_options(epochs=s["epochs"], batch_size=s["batch_size"],
                               learning_rate=s["learning_rate"], decay=s["decay"], l1=s["l1"],
                               engine=self.engine)
        return s

    # -- actions -------------------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        """Start a run with the controls' settings in a background thread; returns its record.

        Raises
        ------
        RuntimeError
            If a run is already in progress (press Stop or call :meth:`wait` first).
        ValueError
            If a setting is invalid.
        """
        if self.running:
            raise RuntimeError("a training run is in progress; press Stop or call wait() first")
        settings = self.settings
        start = 0 if settings["reset"] else len(self.net.history["loss"])
        run: dict[str, Any] = {"settings": settings, "start": start, "status": "running", "error": None,
                               "history": {"loss": [], "learning_rate": [], "time": []}}
        self._runs = [*self._runs, run]
        self._stop.clear()
        self._last_draw = 0.0
        self._set_running(True)
        self.status.info(f"training run #{len(self._runs)} ({settings['epochs']} epochs)…")
        self._thread = threading.Thread(target=self._work, args=(run,), daemon=True,
                                        name="tomowidgets-training")
        self._thread.start()
        return run

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait until the run in progress ends (at most `timeout` s); returns the last run's record.

        A notebook cell blocked here keeps the kernel from reading the widgets' messages, so a
        **Stop** click waits until the cell is done: in a notebook, ``await monitor.finished()``.
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._runs[-1] if self._runs else None

    async def finished(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Await the end of the run in progress (at most `timeout` s); returns the last run's record.

        In a notebook cell, ``await monitor.finished()`` waits as :meth:`wait` does, but the kernel
        goes on handling the widgets' messages meanwhile (ipykernel >= 7 dispatches them while a
        cell awaits), so **Stop** ends the run a cell is waiting for, as during "Run All".
        """
        thread = self._thread
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        while thread is not None and thread.is_alive() and (deadline is None
                                                            or time.monotonic() < deadline):
            await asyncio.sleep(0.1)
        return self._runs[-1] if self._runs else None

    def train(self, block: bool = True) -> dict[str, Any]:
        """Start a run (:meth:`start`) and, if `block`, wait for it to end; returns its record.

        Errors of the run itself are not raised: they are shown in the status line and kept in the
        record's ``error`` (``status`` 'failed').
        """
        run = self.start()
        if block:
            self.wait()
        return run

    def start_check(self) -> None:
        """Judge the trained network in a background thread (see :meth:`check`).

        Raises
        ------
        RuntimeError
            If a run or check is in progress.
        ValueError
            If the network is not trained yet or the set is not a TrainingSet with >= 2 painted
            positive tiles.
        """
        from tomowidgets.trainset import TrainingSet

        if self.running:
            raise RuntimeError("a training run is in progress; press Stop or call wait() first")
        if not self.net.history["loss"]:
            raise ValueError("train the network first (Train), then check it")
        if not isinstance(self.trainset, TrainingSet):
            raise ValueError("checking holds tiles out of a TrainingSet; this monitor was given arrays")
        self._stop.clear()
        self._set_running(True)
        self.status.info("checking: training a second network on 80 % of the tiles…")
        self._thread = threading.Thread(target=self._check_work, daemon=True,
                                        name="tomowidgets-check")
        self._thread.start()

    def check(self, block: bool = True) -> Reliability | None:
        """Judge the trained network on tiles it did not train on; returns the report.

        Starts :meth:`start_check` and, if `block`, waits for it. The report is shown below the
        plots and kept as ``net.reliability`` (saved with the network). Returns None if the check
        was stopped or failed (the status line says why), or if not `block`.
        """
        self.start_check()
        if not block:
            return None
        self.wait()
        return self.net.reliability

    def stop(self) -> bool:
        """Stop the run in progress after the current batch; returns False if none was running."""
        self._stop.set()
        if not self.running:
            self.status.info("no training run in progress")
            return False
        self.net.stop_training = True
        self.status.info("stopping after the current batch…")
        return True

    def on_epoch(self, callback: Callable[[int, dict], Any]) -> Callable[[int, dict], Any]:
        """Call ``callback(epoch, logs)`` in the training thread after each epoch; returns it."""
        self._epoch_callbacks.append(callback)
        return callback

    # -- the training thread -------------------------------------------------------------------
    def _work(self, run: dict[str, Any]) -> None:
        s = run["settings"]
        caught: list[warnings.WarningMessage] = []
        try:
            if self._stop.is_set():
                run["status"] = "stopped"
                self.status.info(f"run #{len(self._runs)} stopped before its first epoch")
                return
            # Warnings (e.g. "learned nothing") are shown in the status line, not in a random cell.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                history = self.net.train(
                    self.trainset, epochs=s["epochs"], batch_size=s["batch_size"],
                    learning_rate=s["learning_rate"], decay=s["decay"], l1=s["l1"], copies=s["copies"],
                    callbacks=[self._epoch_end(run)], progress=False, seed=self.seed,
                    engine=self.engine, reset=s["reset"], **self.train_options)
            run["history"] = {key: list(values) for key, values in history.items()}
            self.report.value = ""  # judged the weights before this run
            n = len(history["loss"])
            run["status"] = "done" if n >= s["epochs"] else "stopped"
            done = (f"run #{len(self._runs)} {run['status']} after {n} epoch(s); loss "
                    f"{history['loss'][-1]:.4g}" if n else f"run #{len(self._runs)} stopped")
            amplitude = self.net.amplitude
            done += f"; calibrated amplitude {amplitude:.3g}" if amplitude is not None else ""
            if caught:
                self.status.error(done + " — " + "; ".join(str(w.message) for w in caught))
            else:
                self.status.info(done)
        except Exception as err:  # shown in the widget: a thread has no other place for it
            run["status"], run["error"] = "failed", f"{type(err).__name__}: {err}"
            self.status.error(err)
        finally:
            self._set_running(False)
            try:
                self._draw(final=True)
            except Exception as err:
                self.status.error(err)

    def _epoch_end(self, run: dict[str, Any]) -> Callable[[int, dict], Any]:
        history, t0 = run["history"], [time.perf_counter()]

        def epoch_end(epoch: int, logs: dict) -> bool | None:
            now = time.perf_counter()
            history["time"].append(now - t0[0])
            t0[0] = now
            history["loss"].append(float(logs["loss"]))
            history["learning_rate"].append(float(logs["learning_rate"]))
            total = run["settings"]["epochs"]
            self.progress.value = (f"epoch {epoch + 1}/{total} · loss {logs['loss']:.4g} · "
                                   f"lr {logs['learning_rate']:.3g}")
            if epoch == 0 or now - self._last_draw >= self.refresh:
                self.status.guard(self._draw)(final=False)
            for callback in self._epoch_callbacks:
                callback(epoch, dict(logs))
            if self._stop.is_set():
                self.net.stop_training = True
                return False
            return None

        return epoch_end

    def _check_work(self) -> None:
        from tomowidgets.network import check_reliability

        stopper = lambda epoch, logs: not self._stop.is_set()  # noqa: E731 - False stops training
        try:
            report = check_reliability(self.net, self.trainset,  # type: ignore[arg-type] # checked
                                       progress=False, callbacks=[stopper])
            if self._stop.is_set():
                self.net.reliability = None
                self.status.info("check stopped")
                return
            self.report.value = _report_html(report)
            self.status.info(f"checked: the {report.feature} network is {report.verdict}")
        except Exception as err:  # shown in the widget: a thread has no other place for it
            self.status.error(err)
        finally:
            self._set_running(False)

    # -- drawing -------------------------------------------------------------------------------
    def _draw(self, *, final: bool) -> None:
        with self._lock:
            self._last_draw = time.perf_counter()
            self.plot.value = loss_png(self._runs)
            self.n_plots += 1
            trained = bool(self.net.history["loss"]) if final else bool(self._runs)
            image = self._preview_image(with_output=trained)
            if image is not None:
                self.preview.value = encode_png(image)
                self.n_previews += 1

    def _preview_image(self, *, with_output: bool) -> np.ndarray | None:
        inputs, masks = _preview_tiles(self.trainset, self.n_preview)
        if not len(inputs):
            return None
        # a 2.5D network reads each tile with its neighbouring slices; show the annotated one
        images = inputs if inputs.ndim == 3 else inputs[..., inputs.shape[-1] // 2]
        if with_output:
            out = self.net.predict(inputs, raw=True, unbin=True)
        else:
            out = np.zeros(images.shape, np.float32)
        top = max(float(out.max()), 1e-3)
        self.caption.value = (f"<small>each row: tile · mask · network output (raw, 0 to {top:.3g}"
                              + (")" if with_output else ", before training)") + "</small>")
        cells = []
        for image, mask, output in zip(images, masks, out, strict=True):
            cells += [to_display(image), np.where(mask, 255, 0).astype(np.uint8), to_uint8(output, 0, top)]
        zoom = max(1, _PREVIEW_PX // images.shape[1])
        return tile_grid(cells, 3, zoom, _GAP)

    def _set_running(self, running: bool) -> None:
        self.train_button.disabled = running
        self.stop_button.disabled = not running
        self.check_button.disabled = running or not self.net.history["loss"]


_VERDICT_COLOURS = {"reliable": "#2e7d32", "weak": "#e65100", "failed": "#c62828"}


def _report_html(report: Reliability) -> str:
    """The reliability report as HTML: the verdict in colour, figures, then the advice."""
    head, *figures = [line.strip() for line in str(report).splitlines() if not line.startswith("  - ")]
    colour = _VERDICT_COLOURS[report.verdict]
    items = "".join(f"<li>{html.escape(a)}</li>" for a in report.advice)
    return (f"<div><b style='color:{colour}'>{html.escape(head)}</b><br>"
            + "<br>".join(html.escape(f) for f in figures) + f"<ul>{items}</ul></div>")


def _preview_tiles(ts: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to `n` tiles as the network reads them (positives first) and their full-size masks, from
    a TrainingSet or ``(x, y)``."""
    if isinstance(ts, tuple | list) and len(ts) == 2:
        x, y = (np.asarray(a, np.float32) for a in ts)
        order: np.ndarray | list[int] = np.argsort(~(y > 0).any(axis=(1, 2)), kind="stable")[:n]
        masks = np.repeat(np.repeat(y[order] > 0.5, 2, axis=1), 2, axis=2)
        return x[order], masks
    kinds = list(ts.kinds)
    order = ([i for i, k in enumerate(kinds) if k == "positive"]
             + [i for i, k in enumerate(kinds) if k != "positive"])[:n]
    if not order:
        return np.zeros((0, 2, 2), np.float32), np.zeros((0, 2, 2), bool)
    return (np.stack([ts[i].inputs for i in order]).astype(np.float32),
            np.stack([ts.mask(i) for i in order]))
