"""Independent tasks run inline, on local processes, or on a dask.distributed cluster.

One code path over the `concurrent.futures.Executor` interface (submit, then `as_completed`):
a `ProcessPoolExecutor` on this machine, or a `distributed.Client`'s executor
(`client.get_executor()`, whose futures are `concurrent.futures.Future`s, so `as_completed`
takes them as they are). Results are put back in task order, so what a caller builds from them
is the same bytes whatever the executor, the number of workers or the order of completion.

`distributed` is in the optional `dask` extra and imported only when a scheduler is given.
The function and the tasks travel to other processes by pickle: `fn` must be a module-level
function (pickled by reference, so a cluster's workers need brokerlab installed, in the same
version; the version is checked when the client connects) and the tasks plain data.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = ["CONNECT_TIMEOUT", "ExecutorError", "run_tasks"]

T = TypeVar("T")
R = TypeVar("R")

CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler before giving up
_INSTALL = "pip install 'brokerlab[dask]'"
_SCHEMES = ("tcp", "tls")


class ExecutorError(ValueError):
    """Tasks that cannot start: a bad argument, a malformed or unreachable scheduler address,
    dask not installed, or workers without brokerlab. The message says which and how to fix it."""


def run_tasks(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 1,
) -> list[R]:
    """`[fn(t) for t in tasks]`, computed inline, on local processes or on a dask cluster.

    Parameters
    ----------
    fn: a module-level function (picklable by reference) of one task; it must not depend on
        which process runs it, or results would depend on the executor.
    tasks: picklable values, one call of `fn` each.
    jobs: local worker processes; 1 (the default) runs inline, in order, in this process.
    scheduler: a dask.distributed scheduler, `tcp://HOST:PORT` or `tls://HOST:PORT` (what
        `dask scheduler` prints); its workers run the tasks. Then `jobs` must stay 1.
    progress: called with `(tasks done, tasks in all)` as results arrive.
    chunk: consecutive tasks sent as one call, so that many tiny tasks do not each pay a round
        trip; `progress` still counts tasks. It changes no result.

    Returns
    -------
    The results in task order, whatever order they completed in.

    Raises
    ------
    ExecutorError: before any task runs, for a bad `jobs` or `chunk`, a malformed or unreachable
        scheduler, a missing `distributed` package, or workers with another brokerlab.
    Whatever `fn` raises, for the first failed call to be collected; the calls not yet started
    are cancelled.

    >>> run_tasks(abs, [-2, 1, -3], chunk=2)
    [2, 1, 3]
    """
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ExecutorError(f"jobs must be an integer >= 1, got {jobs!r}")
    if not (isinstance(chunk, int) and chunk >= 1):
        raise ExecutorError(f"chunk must be an integer >= 1, got {chunk!r}")
    if scheduler is not None:
        _check_address(scheduler)
        if jobs != 1:
            raise ExecutorError(
                f"jobs={jobs} with scheduler {scheduler}: choose one (a cluster's processes "
                "are its workers: `dask worker --nworkers N`)"
            )
    items = list(tasks)
    total = len(items)
    if scheduler is None and jobs == 1:
        results = []
        for task in items:
            results.append(fn(task))
            if progress is not None:
                progress(len(results), total)
        return results
    if not items:
        return []
    batches = [items[i : i + chunk] for i in range(0, total, chunk)]
    executor = _dask(scheduler) if scheduler is not None else _processes(min(jobs, len(batches)))
    with executor as pool:
        return _gather(pool, fn, batches, progress, total)


def _map_chunk(fn: Callable[[T], R], batch: list[T]) -> list[R]:
    """One submitted call: `fn` over consecutive tasks (module-level, so it pickles)."""
    return [fn(task) for task in batch]


def _gather(
    pool: cf.Executor,
    fn: Callable[[T], R],
    batches: list[list[T]],
    progress: Callable[[int, int], None] | None,
    total: int,
) -> list[R]:
    futures = {pool.submit(_map_chunk, fn, batch): i for i, batch in enumerate(batches)}
    done: list[list[R] | None] = [None] * len(batches)
    count = 0
    try:
        for future in cf.as_completed(futures):
            results = future.result()
            done[futures[future]] = results
            count += len(results)
            if progress is not None:
                progress(count, total)
    except BaseException:
        for future in futures:  # those not started; the pool's shutdown waits for the rest
            future.cancel()
        raise
    return [r for results in done if results is not None for r in results]


@contextmanager
def _processes(workers: int) -> Iterator[cf.Executor]:
    with cf.ProcessPoolExecutor(max_workers=workers) as pool:
        yield pool


def _check_address(address: str) -> tuple[str, int]:
    """(host, port) of a `tcp://HOST:PORT` or `tls://HOST:PORT` address, else ExecutorError."""
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        port = None
    if (
        parts.scheme not in _SCHEMES
        or not parts.hostname
        or not port
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ExecutorError(
            f"scheduler {address!r}: expected tcp://HOST:PORT or tls://HOST:PORT "
            "(the address `dask scheduler` prints)"
        )
    return parts.hostname, port


def _reach(address: str) -> None:
    """Fail at once, naming `address`, where nothing listens: dask's own connect retries a
    refused connection until its timeout, as if the scheduler were about to start."""
    import socket  # here, as asyncio below: a run that fans out nothing never imports them

    host, port = _check_address(address)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else err.strerror or str(err)
        raise ExecutorError(
            f"cannot reach the dask scheduler at {address}: {reason} "
            "(is `dask scheduler` running there?)"
        ) from None


def _distributed(address: str) -> Any:
    """The `distributed` package, typed Any: its API is mostly untyped, so that under
    `mypy --strict` every call would need its own ignore."""
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise ExecutorError(
            f"scheduler {address}: running on dask needs the distributed package, an optional "
            f"extra: {_INSTALL}"
        ) from None


@contextmanager
def _dask(address: str) -> Iterator[cf.Executor]:
    distributed = _distributed(address)
    _reach(address)
    _shake_hands(distributed, address)
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as err:  # the scheduler went away since the handshake, or broke
        raise ExecutorError(f"cannot reach the dask scheduler at {address}: {_why(err)}") from None
    try:
        _check_workers(client, address)
        with client.get_executor(pure=False) as pool:
            yield pool
    finally:
        client.close()


def _shake_hands(distributed: Any, address: str) -> None:
    """dask's `connect` waits for the peer's handshake without a bound (distributed.comm.core),
    so a port held by another service would hang the client forever: shake hands first, within
    CONNECT_TIMEOUT."""
    import asyncio

    security = distributed.Security()  # tls:// certificates from dask's configuration

    async def shake() -> None:
        comm = await asyncio.wait_for(
            distributed.comm.connect(
                address, timeout=CONNECT_TIMEOUT, **security.get_connection_args("client")
            ),
            CONNECT_TIMEOUT,
        )
        await comm.close()

    try:
        asyncio.run(shake())
    except OSError as err:  # refused, reset, timed out (TimeoutError is an OSError)
        raise ExecutorError(f"cannot reach the dask scheduler at {address}: {_why(err)}") from None
    except Exception as err:  # a reply dask cannot read: another protocol
        raise ExecutorError(
            f"{address} did not answer as a dask scheduler does ({_why(err)})"
        ) from None


def _why(err: BaseException) -> str:
    """An exception as a short line."""
    text = " ".join(str(err).split())
    if not text and isinstance(err, TimeoutError):
        text = f"no answer within {CONNECT_TIMEOUT:g} s"
    return f"{type(err).__name__}: {text}"[:200] if text else type(err).__name__


def _check_workers(client: Any, address: str) -> None:
    """Workers without brokerlab, or with another version, would fail every task (or compute
    other figures): refuse them before anything runs. Workers that join later are not seen."""
    import importlib.metadata  # here: it scans the installed packages

    try:
        here = importlib.metadata.version("brokerlab")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a bare source tree
        return
    try:  # a stdlib function: it unpickles on a worker without brokerlab
        found: dict[str, str] = client.run(importlib.metadata.version, "brokerlab")
    except importlib.metadata.PackageNotFoundError:
        raise ExecutorError(
            f"the dask workers at {address} need brokerlab {here}, as here: one has none"
        ) from None
    other = sorted((w, v) for w, v in found.items() if v != here)
    if other:
        worker, theirs = other[0]
        raise ExecutorError(
            f"the dask workers at {address} need brokerlab {here}, as here: {worker} has "
            f"{theirs} ({len(other)} of {len(found)} workers differ)"
        )
