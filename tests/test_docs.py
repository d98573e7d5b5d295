"""The README's example runs and prints exactly the IR the README shows."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fenced_blocks(text: str, language: str) -> list[str]:
    """The bodies of the fenced code blocks opened with ```language (exactly)."""
    blocks, current, opened = [], [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if opened is None:
                opened, current = line[3:].strip(), []
            else:
                if opened == language:
                    blocks.append("\n".join(current) + "\n")
                opened = None
        elif opened is not None:
            current.append(line)
    return blocks


def test_readme_example_prints_the_ir_it_shows(tmp_path):
    readme = (ROOT / "README.md").read_text()
    code = fenced_blocks(readme, "python")[0]
    shown_ir = fenced_blocks(readme, "")[0].strip()
    script = tmp_path / "readme.py"
    script.write_text(code)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(script), "exec"), {"__name__": "readme"})
    printed = out.getvalue()
    assert printed.startswith("(2, 3) 1\n")
    assert printed.split("\n", 1)[1].strip() == shown_ir


def test_quickstart_has_exactly_two_commands():
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = fenced_blocks(quickstart, "bash")
    assert len(commands) == 2
    assert "examples/quickstart.py" in commands[0]
    assert "pytest" in commands[1]
    assert commands[1].strip() in (ROOT / ".ci" / "run").read_text()


def test_quickstart_demo_runs(capsys, monkeypatch):
    import runpy

    monkeypatch.setattr(sys, "argv", ["quickstart.py"])  # not pytest's own arguments
    runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "compiled: test accuracy" in out and "still 1 trace" in out
    accuracy = float(out.split("compiled: test accuracy ")[1].split()[0])
    assert accuracy >= 0.9
