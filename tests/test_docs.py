"""The docs follow the code: the README's example runs and prints what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README.md has no python example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert "kind='replied'" in capsys.readouterr().out


def test_readme_shows_the_two_commands_first() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = text.index("```")
    assert text.index("make demo") > first_block and text.index("make test") > first_block
    assert "make test" in (ROOT / ".ci" / "run").read_text()
