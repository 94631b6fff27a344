"""Kernel-side latency of the annotation widgets (targets: new 1024² slice <= 100 ms, brush event <= 5 ms).

Run: ``python benchmarks/widget_latency.py [--repeats N]``. Prints a table of medians.

What is timed is the work the kernel does per user action, including serializing every widget
message (JSON of the content plus a copy of each binary buffer, which is what ipykernel does before
handing them to ZeroMQ); the browser's decoding and drawing are not included. The comparison rows
show ipycanvas's own ``put_image_data`` (Pillow PNG at zlib level 6) against the widgets' encoder.
"""

from __future__ import annotations

import argparse
import json
import time

import comm
import numpy as np
from comm.base_comm import BaseComm


class SerializingComm(BaseComm):
    """A comm that pays what ipykernel pays per message, then drops it."""

    sent_bytes = 0

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):  # noqa: D102
        payload = json.dumps({"msg_type": msg_type, "data": data, "metadata": metadata or {}},
                             default=str).encode()
        copies = [bytes(b) for b in buffers or ()]
        SerializingComm.sent_bytes += len(payload) + sum(len(c) for c in copies)


comm.create_comm = SerializingComm  # before ipywidgets/ipycanvas create their first comm

from ipycanvas import Canvas  # noqa: E402

from tomowidgets import Tomogram, TrainingSet  # noqa: E402
from tomowidgets.widgets import MaskPainter, SliceBrowser, initial_mask  # noqa: E402


def median_ms(fn, repeats: int) -> tuple[float, int]:
    """Median wall time of `fn()` in ms, and the median bytes it sent."""
    times, sizes = [], []
    for i in range(repeats):
        before = SerializingComm.sent_bytes
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
        sizes.append(SerializingComm.sent_bytes - before)
    return 1e3 * float(np.median(times)), int(np.median(sizes))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    n = args.repeats
    rng = np.random.default_rng(0)
    rows: list[tuple[str, float, int, str]] = []

    # noisy slices are the worst case for PNG; n + 1 distinct slices so every show is a new one
    tomo = Tomogram(rng.normal(size=(n + 1, 1024, 1024)).astype(np.float32), apix=10.0)
    browser = SliceBrowser(tomo, z=0)
    ms, size = median_ms(lambda i: browser.show_slice(i + 1), n)
    rows.append(("show a new 1024² slice (SliceBrowser.show_slice)", ms, size, "<= 100 ms"))
    browser.show_slice(1)
    ms, size = median_ms(lambda i: browser.show_slice(1), n)
    rows.append(("show the same slice again (cached)", ms, size, ""))
    ms, size = median_ms(lambda i: browser.set_contrast(-2.0 - 0.01 * i, 2.0), n)
    rows.append(("change contrast, 1024² slice", ms, size, ""))
    ms, size = median_ms(lambda i: browser.hover(100 + 3 * i, 200), n)
    rows.append(("hover readout (mouse move)", ms, size, ""))

    big = Tomogram(rng.normal(size=(min(n, 4) + 1, 4096, 4096)).astype(np.float32), apix=10.0)
    big_browser = SliceBrowser(big, z=0)
    ms, size = median_ms(lambda i: big_browser.show_slice(i % min(n, 4) + 1), min(n, 4))
    rows.append(("show a new 4096² slice (display bin 4 -> 1024²)", ms, size, "<= 100 ms"))

    canvas = Canvas(width=1024, height=1024)
    img8 = np.clip(rng.normal(128, 40, (1024, 1024)), 0, 255).astype(np.uint8)
    ms, size = median_ms(lambda i: canvas.put_image_data(img8), n)
    rows.append(("  for comparison: ipycanvas put_image_data, 1024² uint8", ms, size, ""))

    ts = TrainingSet(64)
    ts.add_positive(tomo, 0, 512, 512, initial_mask(64))
    painter = MaskPainter(ts, zoom=6, radius=3.0)
    painter.press(30.0, 30.0)
    ms, size = median_ms(lambda i: painter.drag(30.0 + (7 * i) % 340, 30.0 + (5 * i) % 340), 10 * n)
    rows.append(("brush event (MaskPainter.drag)", ms, size, "<= 5 ms"))
    ms, size = median_ms(lambda i: (painter.press(40.0 + i, 40.0), painter.drag(80.0, 90.0 + i),
                                    painter.release(120.0, 90.0 + i)), n)
    rows.append(("stroke commit, no autosave (press+drag+release)", ms, size, ""))

    width = max(len(r[0]) for r in rows)
    print(f"{'action':<{width}}  {'median ms':>9}  {'bytes sent':>10}  target")
    print("-" * (width + 32))
    for name, ms, size, target in rows:
        print(f"{name:<{width}}  {ms:9.2f}  {size:10d}  {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
