"""The example scenarios (sim/examples/) and `brokerlab example`.

Every example runs and holds its invariants, the counterexample breaks its mutant (and holds
with the reference), the default example is the built-in default, and what each file's comment
says it shows is what the run shows. The commands written in the comments parse.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from sim import default_scenario, example_names, example_text, load_example, simulate
from sim.cli import build_parser, main
from sim.lab import theory

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "sim" / "examples"
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.toml"))


def header(name: str) -> list[str]:
    """The example's leading comment lines, without the `# `."""
    lines = []
    for line in (EXAMPLES / f"{name}.toml").read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    return lines


def test_the_examples_are_the_ones_listed() -> None:
    assert set(example_names()) == set(NAMES)
    assert example_names()[0] == "default"
    assert {"default", "pool", "mmc", "failover", "skewed-keys", "crash", "counterexample"} <= set(
        NAMES
    )


@pytest.mark.parametrize("name", NAMES)
def test_each_starts_by_saying_what_it_shows_and_how_to_run_it(name: str) -> None:
    lines = header(name)
    assert re.fullmatch(rf"{re.escape(name)}: \S.{{10,80}}", lines[0]), lines[0]
    assert f"brokerlab run sim/examples/{name}.toml" in "\n".join(lines)
    assert f"brokerlab example {'' if name == 'default' else name + ' '}>" in "\n".join(lines)


def commands(name: str) -> list[list[str]]:
    """Every `brokerlab ...` command an example's comment gives: a line after a label
    (`Run it:`, `Sweep:`, ...) or in the indented block, with its continuation lines, or one in
    backquotes; cut at a shell redirection or a comment."""
    found: list[list[str]] = []
    lines = header(name)
    i = 0
    while i < len(lines):
        line = lines[i]
        quoted = re.findall(r"`(brokerlab [^`]*)`", line)
        match = re.match(r"^(?:[A-Z][a-z ]+:)?\s+(brokerlab .*)$", line)
        if match and not quoted:
            text = match[1]
            while text.endswith("\\"):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            quoted = [text]
        for text in quoted:
            words = shlex.split(text.split("#")[0])
            for stop in (">", "&&"):
                if stop in words:
                    words = words[: words.index(stop)]
            found.append(words[1:])
        i += 1
    return found


@pytest.mark.parametrize("name", NAMES)
def test_the_commands_in_the_comment_parse(name: str) -> None:
    found = commands(name)
    assert len(found) >= 2, found  # at least: run it by path, write it out
    parser = build_parser()
    for argv in found:
        parser.parse_args(argv)  # exits 2 (SystemExit) on a bad flag or value
        for arg in argv:
            if arg.startswith("sim/examples/"):
                assert (ROOT / arg).is_file(), arg


def test_the_command_parser_reads_continuations_and_backquotes() -> None:
    found = commands("pool")
    assert ["example", "pool"] in found
    sweep = next(argv for argv in found if argv[0] == "sweep")
    assert sweep[-4:] == ["--seeds", "3", "--out", "rows.json"]


@pytest.mark.parametrize("name", NAMES)
def test_each_runs_with_the_reference_and_holds(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(EXAMPLES / f"{name}.toml")]) == 0
    assert "invariants: all invariants held" in capsys.readouterr().out


def test_the_counterexample_breaks_its_mutant(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(EXAMPLES / "counterexample.toml")
    assert main(["run", path, "--broker", "late_reply_delivered"]) == 1
    captured = capsys.readouterr()
    assert "invariant violated at event 11 (t=2.0): counters:" in captured.err
    assert "VIOLATION" in captured.out


def test_the_counterexample_is_what_the_checker_writes(tmp_path: Path) -> None:
    """The comment's command, run again, writes the file's scenario (and its own comment)."""
    lines = header("counterexample")
    text = " ".join(
        line.strip().rstrip("\\")
        for line in lines
        if line.startswith("  brokerlab check") or line.startswith("      --")
    )
    argv = shlex.split(text)[1:]
    out = argv.index("--out")
    argv[out + 1] = str(tmp_path / "ce.toml")
    assert argv[:2] == ["check", "--broker"]
    assert main(argv) == 1
    written = (tmp_path / "ce.toml").read_text()
    assert written.startswith("# A counterexample found by `brokerlab check`")
    ours = (EXAMPLES / "counterexample.toml").read_text()
    assert "\n#\n# A counterexample found by `brokerlab check`" in ours

    def body(text: str) -> list[str]:  # the checker's own comment may be worded anew
        return [line for line in text.splitlines() if not line.startswith("#")]

    assert body(ours) == body(written)
    assert len(body(ours)) > 20


def test_the_default_example_is_the_built_in_default() -> None:
    assert load_example("default") == default_scenario()
    assert load_example() == default_scenario()


def test_example_prints_the_file_and_no_name_is_the_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["example"]) == 0
    assert capsys.readouterr().out == (EXAMPLES / "default.toml").read_text()
    assert main(["example", "mmc"]) == 0
    assert capsys.readouterr().out == (EXAMPLES / "mmc.toml").read_text() == example_text("mmc")


def test_running_the_printed_default_gives_the_trace_of_run_without_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["example"]) == 0
    printed = tmp_path / "default.toml"
    printed.write_text(capsys.readouterr().out)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["run", "--quiet", "--trace", str(a)]) == 0
    assert main(["run", str(printed), "--quiet", "--trace", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_bytes()) > 100_000  # a whole run, not two empty files


def test_example_list_names_each_with_its_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == example_names()
    for line, name in zip(lines, example_names(), strict=True):
        assert line.split(None, 1)[1] == header(name)[0].removeprefix(f"{name}: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["example", "nope"], 'no example "nope" (there are: default, counterexample, crash'),
        (["example", "mcc"], 'no example "mcc" (did you mean "mmc"? there are: default,'),
        (["example", "--list", "mmc"], "--list takes no NAME"),
    ],
)
def test_a_bad_example_request_exits_2_naming_the_examples(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"brokerlab example: error: {message}")
    assert "Traceback" not in captured.err


def test_the_examples_ship_as_package_data() -> None:
    """pip install . (not -e) copies only the package data pyproject.toml names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["sim.examples"]
    assert all(any(Path(f"{n}.toml").match(g) for g in globs) for n in NAMES)


# -- what each example's comment says it shows ----------------------------------------------


def test_mmc_is_close_to_erlang_c() -> None:
    result = simulate(load_example("mmc"))
    mean = result.summary["latency"]["mean"]
    assert f"This run's mean latency is\n# {mean:.3f}" in example_text("mmc")
    expected = theory.mmc_response(4, 3.0, 1.0)
    assert f"{expected:.3f}" == "1.509"
    assert abs(mean - expected) / expected < 0.05
    assert result.summary["requests"]["timed_out"] == 0


def test_failover_sends_the_outage_to_backup_and_only_it() -> None:
    result = simulate(load_example("failover"), keep_trace=True)
    requests = result.requests()
    by_backup = requests[requests["served_by"] == "backup"]
    assert len(by_backup) > 20
    assert by_backup["sent"].between(100.0, 150.0).all()
    during = requests[requests["sent"].between(100.0, 150.0, inclusive="left")]
    assert (during["served_by"] == "backup").all()
    lost = requests[requests["outcome"] != "replied"]
    assert set(lost["outcome"]) == {"timed_out"}
    assert (lost["sent"] < 100.0).all() and (lost["served_by"] != "backup").all()
    assert result.summary["dead_letters"] == {"actor_stopped": 2}
    share = len(by_backup) / len(requests)
    assert 0.17 < share < 0.23  # "about a fifth"


def test_skewed_keys_saturates_the_hot_keys_owner() -> None:
    result = simulate(load_example("skewed-keys"), keep_trace=True)
    use = result.members()["utilization"]
    assert use.max() > 0.95 and use.min() < 0.2
    keys = result.requests()["key"]
    assert 0.35 < (keys == "0").mean() < 0.47  # "about 40% of the messages"


def test_crash_hangs_fills_retries_and_loses_what_it_held() -> None:
    result = simulate(load_example("crash"), keep_trace=True)
    s = result.summary
    assert s["retries"] > 0
    lost = s["dead_letters"]["actor_stopped"]
    assert s["dead_letters"] == {"actor_stopped": lost} and lost >= 3
    assert s["requests"]["timed_out"] == lost
    requests = result.requests()
    by_2 = requests[requests["served_by"] == "workers-2"]
    assert (by_2["taken"] < 90.0).all()
    retried = requests[requests["retries"] > 0]
    assert (retried["served_by"] != "workers-2").all()
    # Retries follow sends routed to a full mailbox: the hung member's, between hang and crash,
    # then now and then one of the two others'.
    routes: dict[int, list[str]] = {}
    full: list[tuple[str, bool]] = []
    for line in result.trace():
        if line.get("ev") == "route":
            routes.setdefault(line["msg"], []).append(line["actor"])
        elif line.get("ev") == "retry":
            full.append((routes[line["msg"]][-1], 90.0 < line["t"] < 100.0))
    assert ("workers-2", True) in full
    assert all(during == (member == "workers-2") for member, during in full), full
