"""Draw the IR pictures the docs show, with tracejit's own ``Graph.render``.

    python docs/make_images.py           # rewrite docs/images/*.dot and *.svg
    python docs/make_images.py --check   # exit 1 if a committed .dot is out of date

Each picture is committed as the DOT text (compared by the tests, so a change to the passes or
to the DOT writer that changes a picture is noticed) and as the SVG Graphviz drew from it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import tracejit as tj
from tracejit.ir.graph import Graph

IMAGES = Path(__file__).resolve().parent / "images"


def classifier() -> Graph:
    """A small classifier: dense layers, a cond on the logits' size, a running total."""
    rng = np.random.default_rng(0)
    w1 = tj.constant(rng.normal(size=(4, 8)).astype(np.float32))
    b1 = tj.constant(np.full((8,), 0.1, np.float32))
    w2 = tj.constant(rng.normal(size=(8, 3)).astype(np.float32))
    totals = tj.Variable(tj.zeros((3,)), name="class_totals")

    @tj.function
    def predict(x, temperature):
        h = tj.nn.relu(x @ w1 + b1)
        logits = h @ w2 / temperature
        probs = tj.cond(
            logits.max() > 10.0, lambda: tj.nn.softmax(logits / 10.0), lambda: tj.nn.softmax(logits)
        )
        totals.assign_add(probs.sum(0))
        return probs

    spec = (tj.TensorSpec((None, 4)), tj.TensorSpec((), "float32"))
    return predict.get_concrete_function(*spec).ir


def pictures() -> dict[str, Graph]:
    """File stem -> graph, for every picture in the docs."""
    return {"classifier": classifier()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare the .dot files")
    args = parser.parse_args()
    stale = []
    for stem, graph in pictures().items():
        dot_path = IMAGES / f"{stem}.dot"
        text = graph.to_dot()
        if args.check:
            if not dot_path.exists() or dot_path.read_text() != text:
                stale.append(str(dot_path))
            continue
        IMAGES.mkdir(exist_ok=True)
        dot_path.write_text(text)
        graph.render(IMAGES / f"{stem}.svg")
        print(f"wrote {dot_path} and {stem}.svg")
    if stale:
        print("out of date (run python docs/make_images.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
