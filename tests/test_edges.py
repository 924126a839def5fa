"""Issue 15, "a user's first hour": the edges that crashed `brokerlab` or lost work.

Each row of the tables below is an input (a scenario file's text, or a command line) with the
exit code it must give and a piece of the message it must print. The exit codes
(sim/cli/__init__.py): 0 ok, 1 a property broke, 2 bad input, 3 an internal error (a bug in
brokerlab, never the user's input), 130 interrupted, 141 standard output closed early.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

import sim.cli.run
from broker import RetryPolicy
from sim.cli import main
from sim.cli._common import _version

ROOT = Path(__file__).resolve().parent.parent

POOL = """
[[pool]]
name = "w"
size = 2
service = { dist = "constant", value = 1.0 }
"""
CLIENT = """
[[client]]
name = "c"
target = "pool:w"
arrivals = { process = "constant", interval = 1.0 }
count = 3
"""
SMALL = "until = 5.0\n" + POOL + CLIENT


def _pools(n: int, size: int) -> str:
    return "until = 1.0\n" + "".join(
        f'[[pool]]\nname = "w{i}"\nsize = {size}\nservice = {{ dist = "constant", value = 1.0 }}\n'
        for i in range(n)
    )


def _clients(n: int, arrivals: str, keys: str = "") -> str:
    return SMALL + "".join(
        f'[[client]]\nname = "u{i}"\ntarget = "pool:w"\narrivals = {arrivals}\ncount = 1\n{keys}'
        for i in range(n)
    )


# A request to a pool with no member fails with PoolEmpty, a transient error (spec 6.1): it is
# retried max_attempts - 1 times, 0.01 apart. multiplier ** (k - 1) passes the largest double at
# k = 1025: the broker must cap the wait, not overflow (spec 6.2).
RETRY_2000 = """
until = 100.0
[[script]]
at = 0.0
do = "register"
name = "c"
[[script]]
at = 0.0
do = "create_pool"
pool = "p"
[[script]]
at = 1.0
do = "request"
from = "c"
to = "pool:p"
timeout = 1000.0
retry = { max_attempts = 2000, backoff = 0.01, multiplier = 2.0, max_backoff = 0.01 }
"""

# (id, scenario text, exit code, a piece of stdout + stderr)
SCENARIOS = [
    ("speeds-denormal", SMALL.replace("size = 2", "size = 1\nspeeds = [5e-324]"), 2,
     'key "speeds #1": must be >= 1e-09, got 5e-324'),
    ("speeds-at-the-minimum", SMALL.replace("size = 2", "size = 1\nspeeds = [1e-9]"), 4,
     "undrained"),  # finite: the work just cannot finish before the hard stop
    ("slow-speed-denormal",
     SMALL + '[faults]\nslow = [{ actor = "w-1", at = 0.0, until = 2.0, speed = 5e-324 }]\n', 2,
     'slow #1: key "speed": must be >= 1e-09, got 5e-324'),
    ("exponential-mean-1e308", SMALL.replace('"constant", value', '"exponential", mean')
     .replace("mean = 1.0", "mean = 1e308"), 2, 'key "service.mean": must be <= 1e+12'),
    ("until-1e308", SMALL.replace("until = 5.0", "until = 1e308"), 2,
     'key "until": must be <= 1e+12, got 1e+308'),
    ("until-at-the-cap", SMALL.replace("until = 5.0", "until = 1e12"), 0, "all invariants held"),
    ("lognormal-sigma-1e200", SMALL.replace('"constant", value = 1.0', '"lognormal", mean = 1.0, '
     "sigma = 1e200"), 2, 'key "service.sigma": must be <= 10, got 1e+200'),
    ("poisson-rate-denormal",
     SMALL.replace('"constant", interval = 1.0', '"poisson", rate = 5e-324'), 2,
     'key "arrivals.rate": must be >= 1e-12'),
    ("timeout-1e308", SMALL + "timeout = 1e308\n", 2, 'key "timeout": must be <= 1e+12'),
    ("delay-1e308", SMALL + '[faults]\ndelay = { dist = "uniform", low = 0.0, high = 1e308 }\n', 2,
     '[faults]: key "delay.high": must be <= 1e+12'),
    ("crash-at-1e308", SMALL + '[faults]\ncrash = [{ actor = "w-1", at = 1e308 }]\n', 2,
     'crash #1: key "at": must be <= 1e+12'),
    ("script-timestamp-1e308", SMALL + '[[script]]\nat = 1.0\ndo = "send"\nto = "pool:w"\n'
     "ttl = 1.0\ntimestamp = -1e308\n", 2, 'key "timestamp": must be >= -1e+12'),
    ("retry-past-the-largest-double", RETRY_2000, 0, "retries   1999"),
    ("toml-nested-5000-deep", "until = 1.0\nx = " + "[" * 5000 + "]" * 5000 + "\n", 2,
     "invalid TOML: nested too deeply"),
    ("toml-tables-nested-5000-deep", "until = 1.0\nx = " + "{ a = " * 5000 + "1" + " }" * 5000,
     2, "invalid TOML: nested too deeply"),
    ("pool-300000", SMALL.replace("size = 2", "size = 300000"), 2,
     'key "size": must be <= 10000, got 300000'),
    ("pool-30000000", SMALL.replace("size = 2", "size = 30000000"), 2, "must be <= 10000"),
    ("actors-over-the-cap", _pools(6, 10_000), 2,
     '[[pool]] #6 "w5": key "size": 60000 actors (pool members, actors and clients) in all; '
     "at most 50000"),
    ("closed-users-over-the-cap",
     _clients(11, '{ process = "closed", concurrency = 10000 }'), 2,
     "closed-loop users in all; at most 100000"),
    ("zipf-keys-over-the-cap",
     _clients(2, '{ process = "constant", interval = 1.0 }',
              'keys = { dist = "zipf", n = 6000000, s = 1.0 }\n'), 2,
     'key "keys.n": 12000000 Zipf keys in all; at most 10000000'),
    ("seed-30-digits", "seed = 123456789012345678901234567890\n" + SMALL, 2,
     'key "seed": must be <= 18446744073709551615, got 123456789012345678901234567890'),
    ("seed-at-the-cap", f"seed = {2**64 - 1}\n" + SMALL, 0, "seed 18446744073709551615"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [row[1:] for row in SCENARIOS],
    ids=[row[0] for row in SCENARIOS],
)
def test_scenario_edges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, code: int, message: str
) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(text, encoding="utf-8")
    tracemalloc.start()
    try:
        got = main(["run", str(path)] + (["--quiet"] if code else []))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out, err = capsys.readouterr()
    assert (got, "Traceback" in err) == (code, False), err
    assert message in out + err
    if code == 2:
        assert err.startswith(f"brokerlab run: error: {path}"), err  # names the file
        assert err.count("\n") == 1  # one line
        # refused before anything is built (30,000,000 members, 12,000,000 Zipf keys)
        assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB allocated before the refusal"


# -- command lines -------------------------------------------------------------------------


def _main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse's own errors: usage on stderr, exit 2
        assert isinstance(exit_.code, int)
        return exit_.code


# {s}: a valid scenario file; {x}: an existing file; {d}: a fresh directory; {f}: a new file;
# {m}: a scenario with the largest seed.

COMMANDS = [
    ("seed-2**64", "run {s} --seed 18446744073709551616", 2,
     "argument --seed: expected an integer from 0 to 18446744073709551615"),
    ("until-1e308", "run {s} --until 1e308", 2,
     "argument --until: expected a finite number > 0 and <= 1e+12, got '1e308'"),
    ("trace-over-the-scenario", "run {s} --trace {s}", 2, "--trace {s}: is the scenario, an input"),
    ("summary-over-the-scenario", "run {s} --summary {s} --force", 2,
     "--summary {s}: is the scenario, an input"),
    ("trace-and-summary-one-file", "run {s} --trace {f} --summary {f}", 2,
     "--trace and --summary name the same file {f}"),
    ("trace-exists", "run {s} --trace {x}", 2, "--trace {x}: exists (--force replaces it)"),
    ("trace-exists-forced", "run {s} --trace {x} --force --quiet", 0, ""),
    ("trace-to-a-directory", "run {s} --trace {d}", 2, "--trace {d}: is a directory"),
    ("trace-to-/dev/null", "run {s} --trace /dev/null --quiet", 0, ""),
    ("summary-to-/dev/stdout", "run {s} --summary /dev/stdout --trace /dev/null --quiet", 0, ""),
    ("summary-bad-path", "run {s} --summary {d}/no/such/dir/s.json", 2,
     "cannot write the summary to '{d}/no/such/dir/s.json': No such file or directory"),
    ("check-out-exists", "check --clients 1 --faults none --out {x}", 2,
     "--out {x}: exists (--force replaces it)"),
    ("check-out-and-graph-one-file",
     "check --clients 1 --faults none --out {f}.dot --graph {f}.dot", 2,
     "--out and --graph name the same file {f}.dot"),
    ("sweep-out-over-the-scenario", "sweep {d}/s.json --out {d}/s.json", 2, "is the scenario"),
    ("sweep-seeds-past-64-bits", "sweep {m} --seeds 2 --quiet", 2,
     "--seeds 2: seed 18446744073709551615 plus 1 passes 18446744073709551615, the largest"),
    ("plot-over-its-input", "plot {d}/rows.png -o {d}/rows.png", 2,
     "-o {d}/rows.png: is the input, an input"),
    ("plot-exists", "plot {s} -o {x}.png", 2, "-o {x}.png: exists (--force replaces it)"),
    ("matrix-over-the-spec", f"vectors matrix --out {ROOT / 'docs' / 'spec.md'} --force", 2,
     "is the spec, an input"),
    ("keep-the-corpus", "vectors verify --keep " + str(ROOT / "sim" / "vectors" / "corpus") +
     " --force 5.5", 2, "is the corpus, an input"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "code", "message"),
    [row[1:] for row in COMMANDS],
    ids=[row[0] for row in COMMANDS],
)
def test_command_edges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, code: int, message: str
) -> None:
    scenario, existing, fresh = tmp_path / "s.toml", tmp_path / "x.txt", tmp_path / "new.out"
    scenario.write_text(SMALL, encoding="utf-8")
    (tmp_path / "max.toml").write_text(f"seed = {2**64 - 1}\n{SMALL}", encoding="utf-8")
    for path in (existing, tmp_path / "x.txt.png", tmp_path / "rows.png"):
        path.write_text("keep me\n", encoding="utf-8")
    (tmp_path / "s.json").write_text(SMALL, encoding="utf-8")  # a scenario, whatever its name
    names = {"s": str(scenario), "x": str(existing), "d": str(tmp_path), "f": str(fresh),
             "m": str(tmp_path / "max.toml")}  # fmt: skip
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    got = _main([arg.format(**names) for arg in command.split()])
    err = capsys.readouterr().err
    assert (got, "Traceback" in err) == (code, False), err
    assert message.format(**names) in err
    if code == 2:
        # Nothing written, nothing replaced, no file left behind (not even an empty one).
        assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
        assert err.count("\n") == 1 or err.startswith("usage: ")


def test_an_output_is_claimed_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A summary that cannot be written is refused at once, not after the run it would waste."""
    calls = []
    monkeypatch.setattr(sim.cli.run, "simulate", lambda *a, **k: calls.append(1))
    assert main(["run", "--summary", str(tmp_path / "no" / "s.json")]) == 2
    assert calls == []
    assert "cannot write the summary" in capsys.readouterr().err


def test_outputs_are_whole_or_absent(tmp_path: Path) -> None:
    """--force replaces a file only with a finished one: a run that fails keeps the old file."""
    old = tmp_path / "summary.json"
    old.write_text("old\n", encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(SMALL, encoding="utf-8")
    # --broker is resolved after the outputs are claimed: a usage error at that point.
    args = ["run", str(bad), "--summary", str(old), "--force", "--broker", "nonesuch"]
    assert main(args) == 2
    assert old.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "summary.json"]
    assert main(["run", str(bad), "--summary", str(old), "--force", "--quiet"]) == 0
    assert old.read_text(encoding="utf-8").startswith("{")


def test_spec_6_2_a_wait_past_the_largest_double_is_the_cap() -> None:
    """multiplier ** (k - 1) overflows a double from k = 1025 (multiplier 2): the wait is then
    max_backoff (0 with backoff 0), and every wait before it is the formula's, bit for bit."""
    rng = random.Random(0)
    policy = RetryPolicy(max_attempts=5000, backoff=0.01, multiplier=2.0, max_backoff=0.01)
    assert [policy.delay(k, rng) for k in (1, 1024, 1025, 1026, 4999)] == [0.01] * 5
    zero = RetryPolicy(max_attempts=5000, backoff=0.0, multiplier=2.0, max_backoff=1.0)
    assert [zero.delay(k, rng) for k in (1, 1025, 4999)] == [0.0] * 3
    integral = RetryPolicy(max_attempts=5000, backoff=1.5, multiplier=3, max_backoff=7.5)
    assert integral.delay(2000, rng) == 7.5  # an int power, too large for a float
    wide = RetryPolicy(max_attempts=5000, backoff=1e-300, multiplier=2.0, max_backoff=1e300)
    for k in range(1, 1025):
        assert wide.delay(k, rng) == min(1e300, 1e-300 * 2.0 ** (k - 1))
    assert wide.delay(1025, rng) == 1e300


def test_a_trace_past_1024_retries_conforms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model caps the wait as the broker does (spec 6.2): conform replays all 1,999 retries
    (it ended in an OverflowError, exit 3, when only the broker capped it)."""
    scenario, trace = tmp_path / "r.toml", tmp_path / "r.jsonl"
    scenario.write_text(RETRY_2000)
    assert main(["run", str(scenario), "--trace", str(trace), "--quiet"]) == 0
    assert trace.read_text().count('"ev":"retry"') == 1999
    assert main(["conform", str(trace)]) == 0
    assert "conform" in capsys.readouterr().out


# -- exit 3: an internal error ---------------------------------------------------------------


def test_an_internal_error_is_exit_3_with_one_line_to_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(sim.cli.run, "simulate", broken)
    monkeypatch.delenv("BROKERLAB_TRACEBACK", raising=False)
    assert main(["run", "--seed", "3", "--quiet"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("brokerlab run: internal error: ZeroDivisionError: float division by")
    assert f"brokerlab {_version()}" in err and "please report" in err
    assert "command line: brokerlab run --seed 3 --quiet" in err
    monkeypatch.setenv("BROKERLAB_TRACEBACK", "1")
    assert main(["run", "--quiet"]) == 3
    assert "Traceback" in capsys.readouterr().err  # for the report, on request


def test_a_crashed_run_keeps_its_trace_and_says_it_is_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sim.run._world import Worker

    finish = Worker.finish
    calls = []

    def crash_on_the_third(self: Worker) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        finish(self)

    monkeypatch.setattr(Worker, "finish", crash_on_the_third)
    scenario, trace = tmp_path / "s.toml", tmp_path / "t.jsonl"
    scenario.write_text(SMALL, encoding="utf-8")
    assert main(["run", str(scenario), "--trace", str(trace), "--quiet"]) == 3
    err = capsys.readouterr().err
    lines = trace.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 5 and '"end"' not in lines[-1]
    assert f"the trace at {trace} is partial: cut after line {len(lines)}" in err
    assert "internal error: RuntimeError: boom" in err
    monkeypatch.undo()
    assert main(["conform", "--partial", str(trace)]) == 0
    assert main(["conform", str(trace)]) == 1  # no `end` line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml", "t.jsonl"]


def test_an_interrupted_run_is_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.cli.run, "simulate", interrupted)
    assert main(["run", "--quiet"]) == 130
    assert capsys.readouterr().err == "brokerlab run: interrupted\n"


# -- a closed standard output ------------------------------------------------------------------


def test_a_closed_stdout_ends_quietly_with_141() -> None:
    """`brokerlab vectors list | head -1`: the reader went away; no BrokenPipeError traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "vectors", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before it writes anything: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=60), err) == (141, "")


def test_seed_cap_is_the_ports_64_bits() -> None:
    from sim.scenario import MAX_SEED

    assert MAX_SEED == 2**64 - 1
