"""The README's code runs as written: every line of its ```sh blocks, in order, in one scratch
directory, by bash, with the exit code its comment documents (`# exit 1: ...`; otherwise 0);
and every ```python block, executed.

A line is left out only when a pattern of SKIPPED matches it, and each pattern says why; a
pattern that matches no line fails the test, so the list cannot go stale. The scratch directory
holds a copy of the example scenarios at `sim/examples/`, where the README's paths point, and
the interpreter's bin directory (with `brokerlab`) comes first on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

# (a regular expression searched in the command, its comment left out; why it is not run)
SKIPPED: list[tuple[str, str]] = [
    (r"^make (demo|test)$", "builds .venv; `make test` runs this very test"),
    (r"^brokerlab check$", "15 s of model checking: tests/test_checker.py checks these bounds"),
    (r"^brokerlab check --preset ", "21 s and 9 s: tests/test_checker_bounds.py runs the presets"),
    (r"^brokerlab mutants ", "20 s: tests/test_mutants.py runs the catalogue, command included"),
    (r"\$PORT\b|^PORT=", "needs Node.js for the port: tests/test_node_port.py runs these steps"),
    (r"^\. \.venv/bin/activate$", "the interpreter's bin directory is already first on PATH"),
    (r"^brokerlab conform port\.jsonl$", "reads port.jsonl, written by the Node port above"),
    (r"^brokerlab diff bug\.jsonl ", "reads bug.jsonl, written by the Node port above"),
    (r"^brokerlab vectors list \| less$", "a pager; tests/test_vectors.py runs `vectors list`"),
]


def sh_lines() -> list[tuple[str, str]]:
    """(command, comment) for every line of every ```sh block, continuations joined."""
    lines: list[tuple[str, str]] = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command, _, comment = line.partition(" #")
            command = " ".join(command.split())
            if command and not command.startswith("#"):
                lines.append((command, comment.strip()))
    return lines


def skipped(command: str) -> str | None:
    return next((why for pattern, why in SKIPPED if re.search(pattern, command)), None)


def expected_exit(comment: str) -> int:
    found = re.match(r"exit (\d):", comment)
    return int(found[1]) if found else 0


def test_the_sh_blocks_parse_as_expected() -> None:
    lines = sh_lines()
    commands = [command for command, _ in lines]
    assert "brokerlab run" in commands
    sweep = next(c for c in commands if c.startswith("brokerlab sweep "))
    assert sweep.endswith("--seeds 3 --jobs 2 --out rows.json")  # the continuation joined
    assert expected_exit("exit 1: a monitor fires") == 1
    assert expected_exit("re-run; exit 1 at the first difference") == 0  # a remark, not a code
    assert [expected_exit(comment) for _, comment in lines].count(1) >= 3


def test_every_skip_pattern_matches_a_line() -> None:
    commands = [command for command, _ in sh_lines()]
    for pattern, why in SKIPPED:
        assert any(re.search(pattern, c) for c in commands), f"stale: {pattern} ({why})"


def test_the_sh_lines_run_as_written(tmp_path: Path) -> None:
    assert (BIN / "brokerlab").exists(), f"no brokerlab in {BIN}: pip install -e . first"
    shutil.copytree(ROOT / "sim" / "examples", tmp_path / "sim" / "examples")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env["MPLBACKEND"] = "Agg"
    for key in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"):
        env.pop(key, None)  # no coverage of the subprocesses: it would slow every line
    ran, failures = [], []
    for command, comment in sh_lines():
        if skipped(command) is not None:
            continue
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        ran.append(command)
        want = expected_exit(comment)
        if proc.returncode != want or "Traceback" in proc.stderr:
            failures.append(
                f"{command}\n  exit {proc.returncode}, documented {want}\n"
                f"  stdout: {proc.stdout[-400:]}\n  stderr: {proc.stderr[-800:]}"
            )
    assert failures == []
    assert len(ran) >= 12, ran
    for made in ("mmc.toml", "run.jsonl", "summary.json", "ce.toml", "rows.json", "latency.png"):
        assert (tmp_path / made).stat().st_size > 0, made


def test_the_python_blocks_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    for n, block in enumerate(blocks, 1):
        exec(compile(block, f"README.md python block {n}", "exec"), {})
    out = capsys.readouterr().out
    assert "kind='replied'" in out  # the broker's example
    assert "served_by" in out and "latency_mean" in out  # the Python API's tables
