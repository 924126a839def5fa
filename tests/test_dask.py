"""Sweeps on a real dask.distributed cluster (`brokerlab sweep --scheduler`, `sim.run.run_tasks`;
docs/scenario-format.md, "Running sweeps on a cluster").

A module fixture starts a `dask scheduler` and two `dask worker` processes on localhost, from
this interpreter's bin directory (`make test` installs the `dask` extra, so nothing here is
skipped), waits until the scheduler sees both workers, and kills their process groups (nannies
and worker processes included) at teardown. The tests that need no cluster do not start one.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import distributed
import pytest

from sim.cli import main
from sim.run import ExecutorError, run_tasks
from sim.run import _executor as executor

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MMC = ROOT / "sim" / "examples" / "mmc.toml"
# 2 x 2 points x 2 seeds of the M/M/c example, a few hundred requests a run.
SWEEP = [
    "sweep", str(MMC), "--vary", "client.load.arrivals.rate=2.0,3.0", "--vary", "until=50,80",
    "--seeds", "2",
]  # fmt: skip
START_TIMEOUT = 60.0  # seconds for the scheduler and both workers to come up


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # coverage's subprocess hook would trace the scheduler and the workers, slowly, for nothing.
    for key in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"):
        env.pop(key, None)
    return env


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    # tests/ on the path: the tasks of `run_tasks` below name a function of this module, which
    # the workers (and the scheduler, which reads the task graph) import, as they do brokerlab's.
    env = dict(
        _env(),
        PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), *_pythonpath()]),
        DASK_TEMPORARY_DIRECTORY=str(log.parent),  # the workers' scratch space, not in /tmp
    )
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _pythonpath() -> list[str]:
    return [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the process group `proc` leads (a worker's nanny spawns the worker itself): SIGTERM,
    a bounded wait, then SIGKILL for whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _wait_for_cluster(procs: list[subprocess.Popen[bytes]], file: Path, logs: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT

    def check() -> None:
        dead = [p.args for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            text = "\n".join(f"{f.name}:\n{f.read_text()[-2000:]}" for f in logs.glob("*.log"))
            pytest.fail(f"the dask cluster did not start ({dead or 'timed out'}):\n{text}")

    while not file.exists() or not file.read_text().strip().endswith("}"):
        check()
        time.sleep(0.1)
    address = json.loads(file.read_text())["address"]
    with distributed.Client(address, timeout=10, set_as_default=False) as client:
        while len(client.scheduler_info()["workers"]) < 2:
            check()
            time.sleep(0.1)
    return str(address)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a scheduler with two single-threaded workers, on localhost."""
    tmp = tmp_path_factory.mktemp("dask")
    file = tmp / "scheduler.json"
    dask = str(BIN / "dask")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_start(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(file)],
            tmp / "scheduler.log",
        ))  # fmt: skip
        for k in (1, 2):
            procs.append(_start(
                [dask, "worker", "--scheduler-file", str(file), "--nworkers", "1",
                 "--nthreads", "1", "--no-dashboard"],
                tmp / f"worker{k}.log",
            ))  # fmt: skip
        yield _wait_for_cluster(procs, file, tmp)
    finally:
        for proc in reversed(procs):  # the workers first: they would retry a gone scheduler
            _stop(proc)


def brokerlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "brokerlab"), *args],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _slow_square(x: int) -> tuple[int, int]:
    """x*x and the worker's pid; the first tasks are the slowest, so they finish last."""
    time.sleep(0.02 * (12 - x))
    return x * x, os.getpid()


# -- on the cluster ---------------------------------------------------------------------------


def executors(cluster: str) -> dict[str, list[str]]:
    """The flags of each way to run a command's tasks: inline, local processes, the cluster."""
    return {
        "inline": ["--jobs", "1"],
        "processes": ["--jobs", "2"],
        "dask": ["--scheduler", cluster],
    }


def test_a_sweep_on_the_cluster_writes_the_bytes_of_a_local_sweep(
    cluster: str, tmp_path: Path
) -> None:
    out = {}
    for name, flags in executors(cluster).items():
        proc = brokerlab(*SWEEP, *flags, "--out", f"{name}.json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""  # no bar (not a terminal), and no warning from dask at exit
        out[name] = (proc.stdout, (tmp_path / f"{name}.json").read_bytes())
    assert len(out["inline"][0].splitlines()) == 8
    assert out["dask"] == out["inline"] == out["processes"]


def test_a_swarm_on_the_cluster_writes_the_bytes_of_a_local_swarm(
    cluster: str, tmp_path: Path
) -> None:
    """`brokerlab swarm --seed 1 --worlds 50`, with a mutant so that shrunk files are compared
    too: the report and the shrunk scenarios are the same bytes on every executor."""
    out = {}
    for name, flags in executors(cluster).items():
        args = ["--seed", "1", "--worlds", "50", "--broker", "late_reply_delivered", "--quiet",
                "--shrink-budget", "200", "--report", f"{name}.json", "--out", name]  # fmt: skip
        proc = brokerlab("swarm", *args, *flags, cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr  # the mutant is found
        shrunk = sorted((tmp_path / name).glob("*.toml"))
        assert shrunk
        report = (tmp_path / f"{name}.json").read_text().replace(f'"{name}/', '"OUT/')
        out[name] = (report, [(f.name, f.read_bytes()) for f in shrunk])
    assert out["dask"] == out["inline"] == out["processes"]


@pytest.mark.parametrize("chunk", [1, 3])
def test_run_tasks_on_the_cluster_returns_results_in_task_order(cluster: str, chunk: int) -> None:
    seen: list[tuple[int, int]] = []
    results = run_tasks(
        _slow_square, range(12), scheduler=cluster, chunk=chunk,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert [r for r, _ in results] == [x * x for x in range(12)]
    assert len({pid for _, pid in results} - {os.getpid()}) == 2  # both workers, not here
    assert [d for d, _ in seen] == list(range(chunk, 13, chunk))  # counts tasks, per call
    assert {t for _, t in seen} == {12}


# -- without a cluster ------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("tcp://127.0.0.1:{closed}", "cannot reach the dask scheduler at tcp://127.0.0.1:{closed}"),
        ("127.0.0.1:8786", "scheduler '127.0.0.1:8786': expected tcp://HOST:PORT"),
        ("tcp://127.0.0.1", "scheduler 'tcp://127.0.0.1': expected tcp://HOST:PORT"),
        ("http://127.0.0.1:8786", "expected tcp://HOST:PORT or tls://HOST:PORT"),
    ],
)
def test_a_bad_scheduler_exits_2_with_one_line_naming_it(
    tmp_path: Path, address: str, message: str
) -> None:
    closed = _closed_port()
    address, message = address.format(closed=closed), message.format(closed=closed)
    start = time.monotonic()
    proc = brokerlab(*SWEEP, "--scheduler", address, "--out", "rows.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("brokerlab sweep: error: ") and message in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == "" and not (tmp_path / "rows.json").exists()
    assert time.monotonic() - start < executor.CONNECT_TIMEOUT  # refused: no retrying


def test_a_port_that_does_not_speak_dask_fails_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dask's own connect would wait for a handshake forever; the handshake is bounded."""
    monkeypatch.setattr(executor, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(ExecutorError, match=f"cannot reach the dask scheduler at {address}"):
            run_tasks(abs, [1], scheduler=address)
    assert time.monotonic() - start < 5.0


def test_jobs_and_a_scheduler_are_refused_together(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*SWEEP, "--jobs", "2", "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    err = capsys.readouterr().err
    assert "--jobs 2 with --scheduler: choose one" in err and err.count("\n") == 1
    with pytest.raises(ExecutorError, match="jobs=2 with scheduler"):
        run_tasks(abs, [1], jobs=2, scheduler="tcp://127.0.0.1:8786")
    for bad in ({"jobs": 0}, {"chunk": 0}, {"chunk": 1.5}):
        with pytest.raises(ExecutorError, match=f"{next(iter(bad))} must be an integer >= 1"):
            run_tasks(abs, [1], **bad)  # type: ignore[arg-type]


class _Workers:
    """A stand-in for a connected client: `run` answers as the workers would."""

    def __init__(self, answer: dict[str, str] | Exception) -> None:
        self.answer = answer

    def run(self, fn: object, *args: object) -> dict[str, str]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_workers_with_another_brokerlab_are_refused() -> None:
    here = importlib.metadata.version("brokerlab")
    executor._check_workers(_Workers({"tcp://w:1": here, "tcp://w:2": here}), "tcp://s:1")
    with pytest.raises(ExecutorError, match=r"tcp://w:2 has 0\.0\.1 \(1 of 2 workers differ\)"):
        executor._check_workers(_Workers({"tcp://w:1": here, "tcp://w:2": "0.0.1"}), "tcp://s:1")
    missing = importlib.metadata.PackageNotFoundError("brokerlab")
    with pytest.raises(ExecutorError, match=f"need brokerlab {here}, as here: one has none"):
        executor._check_workers(_Workers(missing), "tcp://s:1")


def test_local_processes_and_chunks_keep_the_task_order() -> None:
    tasks = [-(x**3) for x in range(20)]
    seen: list[int] = []
    got = run_tasks(abs, tasks, jobs=2, chunk=3, progress=lambda d, n: seen.append(d))
    assert got == [abs(t) for t in tasks] == run_tasks(abs, tasks)
    assert sorted(seen) == seen and seen[-1] == 20
    assert run_tasks(math.sqrt, [], jobs=2) == []
