"""The brokerlab CLI: run, summary, replay, and every bad-input path (exit 2, no traceback)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from scripts import small_pool

from sim.cli import GROUPS, build_parser, main

SMALL = small_pool(11, 40.0, "[faults]\nduplicate = 0.05\n")


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_run_prints_a_readable_summary(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(small)]) == 0
    out = capsys.readouterr().out
    for needle in ("seed 11", "requests  issued", "latency", "workers-1", "all invariants held"):
        assert needle in out


def test_run_writes_summary_json(small: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    assert main(["run", str(small), "--summary", str(summary), "--quiet", "--seed", "5"]) == 0
    data = json.loads(summary.read_text())
    assert data["seed"] == 5
    assert set(data) >= {"seed", "end_time", "events", "messages", "dead_letters", "requests",
                         "latency", "members", "invariants"}  # fmt: skip
    assert set(data["messages"]) == {"accepted", "delivered", "dead_lettered", "rejected",
                                     "in_flight"}  # fmt: skip
    assert set(data["latency"]) == {"count", "mean", "p50", "p90", "p99", "max"}
    assert data["invariants"] == {"ok": True, "violations": []}


def test_until_override_shortens_the_run(small: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    main(["run", str(small), "--summary", str(a), "--quiet"])
    main(["run", str(small), "--summary", str(b), "--quiet", "--until", "10"])
    issued = [json.loads(p.read_text())["requests"]["issued"] for p in (a, b)]
    assert issued[1] < issued[0] / 2


def test_replay_identical_then_divergence_on_edit(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.jsonl"
    assert main(["run", str(small), "--trace", str(trace), "--quiet"]) == 0
    assert main(["replay", str(trace)]) == 0
    assert "replay identical" in capsys.readouterr().out
    lines = trace.read_text().splitlines()
    event = json.loads(lines[40])
    event["t"] = event["t"] + 1e-9
    edited = list(lines)
    edited[40] = json.dumps(event, sort_keys=True, separators=(",", ":"))
    trace.write_text("\n".join(edited) + "\n")
    assert main(["replay", str(trace)]) == 1
    out = capsys.readouterr().out
    assert "line 41 differs" in out
    assert lines[40] in out and edited[40] in out
    trace.write_text("\n".join(lines[:100]) + "\n")  # truncated: the run goes on past it
    assert main(["replay", str(trace)]) == 1
    assert "line 101: the recorded trace ends here without its end line, cut short" in (
        capsys.readouterr().out
    )
    trace.write_text("\n".join([*lines, lines[-1]]) + "\n")  # an extra line
    assert main(["replay", str(trace)]) == 1
    assert "<end of run>" in capsys.readouterr().out


SCENARIO_ERRORS = [
    ("seed = 1\nuntil = 10.0\nbogus = 1\n", 'unknown key "bogus"'),
    ('until = 10.0\n[[pool]]\nname = "p"\nsize = 2\nstrategy = "round_rubin"\n'
     'service = { dist = "constant", value = 1.0 }\n', "round_rubin"),
    ('until = 10.0\n[[pool]]\nname = "p"\nsize = 2\ncapacty = 3\n'
     'service = { dist = "constant", value = 1.0 }\n', 'did you mean "capacity"'),
    ("until = -1.0\n", "until"),
    ("until = 1.0\nseed = = 2\n", "line 2"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "needle"), SCENARIO_ERRORS)
def test_bad_scenario_exits_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and needle in err
    assert "Traceback" not in err


_V2 = '{"format":"brokerlab-trace","version":2,"spec_version":"1.2","broker":"reference",'
BAD_TRACES = [
    ("", "empty file"),
    ("not json\n", "bad.jsonl:1: not valid JSON"),
    ("[1, 2]\n", "expected a JSON object"),
    ('{"format":"other","version":1}\n', "not a brokerlab trace"),
    ('{"format":"brokerlab-trace","version":3,"seed":1,"scenario":{}}\n', "newer"),
    ('{"format":"brokerlab-trace","version":1,"seed":1,"scenario":{}}\n', "effects only"),
    ('{"format":"brokerlab-trace","version":2,"seed":1}\n', "lacks 'spec_version'"),
    (_V2 + '"seed":1}\n', "lacks 'scenario'"),
    (_V2 + '"seed":1,"scenario":{"until":"x"}}\n', "until"),
    (_V2 + '"seed":1,"scenario":{"until":5.0,"seed":2}}\n', "seed"),
    (_V2.replace("1.2", "9.9") + '"seed":1,"scenario":{}}\n', "spec version '9.9'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "needle"), BAD_TRACES)
def test_bad_trace_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_unreadable_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["replay", str(binary)]) == 2
    assert "UTF-8" in capsys.readouterr().err
    assert main(["run", "--trace", str(tmp_path / "no/such/dir/t.jsonl"), "--quiet"]) == 2
    assert "cannot write the trace" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--seed", "-1"],
        ["run", "--seed", "x"],
        ["run", "--until", "0"],
        ["run", "--until", "nan"],
        ["fly"],
        [],
    ],
)
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_console_script_version_and_exit_code() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sim.cli", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("brokerlab ")


def test_consistent_hash_target_needs_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hash.toml"
    path.write_text(
        SMALL.replace('name = "workers"', 'name = "workers"\nstrategy = "consistent_hash"')
    )
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert '[[client]] #1 "load"' in err and 'key "keys"' in err and "consistent_hash" in err
    path.write_text(
        path.read_text().replace(
            "timeout = 5.0", 'timeout = 5.0\nkeys = { dist = "uniform", n = 20 }'
        )
    )
    assert main(["run", str(path), "--quiet"]) == 0


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_each_command_builds_only_its_groups_parser() -> None:
    """`main` builds the parser of the command's group only (GROUPS): the table names every
    command of the full parser, and each group's parser has the same commands as the full one."""
    full = _commands(build_parser())
    assert sorted(full) == sorted(GROUPS)
    for command, group in GROUPS.items():
        assert _commands(build_parser(command)) == [c for c in full if GROUPS[c] == group]


def test_brokerlab_run_loads_neither_the_model_nor_the_lab(tmp_path: Path) -> None:
    """An untraced `brokerlab run` imports what a run needs: not the model (the trace's
    encoding, the bridge of scripts), the lab, the ports, the examples or the executor."""
    (tmp_path / "pool.toml").write_text(small_pool(2, 5.0))
    code = (
        "import sys\nfrom sim.cli import main\n"
        "assert main(['run', 'pool.toml', '--quiet']) == 0\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    loaded = set(proc.stdout.split())
    for name in ("model", "sim.lab", "sim.port", "sim.examples", "sim.checking", "concurrent"):
        assert name not in loaded, name
    assert "sim.run._runner" in loaded
