"""Take the screenshot of a ``tj.report`` page that docs/inspecting.md shows.

    python docs/make_report_image.py   # rewrite docs/images/report.png

It makes the report of a small training step (traced twice: the batch size changes), opens it
in the system Chromium with Playwright (``pip install playwright``; no browser download: it
uses ``chromium`` from PATH), clicks a node of the first pass's diff so that its source line is
highlighted, and saves the window.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

import tracejit as tj

IMAGE = Path(__file__).resolve().parent / "images" / "report.png"


def train_step() -> tj.Function:
    rng = np.random.default_rng(0)
    w = tj.Variable(rng.normal(size=(4, 3)).astype(np.float32), name="w")
    b = tj.Variable(np.zeros(3, np.float32), name="b")

    @tj.function
    def step(x, labels, lr):
        with tj.GradientTape() as tape:
            logits = x @ w + b
            loss = tj.nn.softmax_cross_entropy(logits, labels)
            if loss > 10.0:
                loss = tj.sqrt(loss)
        grad_w, grad_b = tape.gradient(loss, [w, b])
        w.assign_sub(lr * grad_w)
        b.assign_sub(lr * grad_b)
        return loss

    for n in (8, 8, 5):
        x = rng.normal(size=(n, 4)).astype(np.float32)
        labels = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
        step(x, labels, 0.1)
    return step


def main() -> int:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium on PATH", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as directory:
        page_path = tj.report(train_step(), Path(directory) / "step.html")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            tab = browser.new_page(viewport={"width": 1360, "height": 820})
            tab.goto(page_path.as_uri())
            tab.locator("#trace-1-stage-2").scroll_into_view_if_needed()
            tab.locator("#trace-1-stage-2 .diff-line.node").first.click()
            tab.locator("#trace-1-stage-2 h4").scroll_into_view_if_needed()
            tab.evaluate("window.scrollBy(0, -40)")
            IMAGE.parent.mkdir(exist_ok=True)
            tab.screenshot(path=str(IMAGE))
            browser.close()
    print(f"wrote {IMAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
