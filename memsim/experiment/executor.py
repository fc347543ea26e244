"""Executors: where sweep points are evaluated (this process, or a pool of local processes).

Sits under the sweep driver (:mod:`memsim.experiment.points`), which only ever calls the three methods of
:class:`Executor`; a distributed engine (Ray, Dask) can take the local pool's place by
implementing them, without touching the sweep logic. Results never depend on the executor:
every task carries its own seed, so one worker and many give identical numbers.

Call order: ``submit(fn, task)`` any number of times (``fn`` and ``task`` must pickle for a
process pool), ``next_done()`` to receive one finished ``(ticket, result)`` at a time while
``pending`` is non-zero, then ``close()`` (or use the executor as a context manager).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from memsim.errors import WorkerDied, describe_task

#: A task and the result of one call on it.
TaskT = TypeVar("TaskT")
ResultT = TypeVar("ResultT")


class Executor(ABC):
    """Runs ``fn(task)`` calls and hands back their results as they finish."""

    workers: int = 1

    @abstractmethod
    def submit(self, fn: Callable[[Any], Any], task: Any) -> int:
        """Queue ``fn(task)``; returns a ticket that :meth:`next_done` reports with the result."""

    @abstractmethod
    def next_done(self) -> tuple[int, Any]:
        """Block until one queued call finishes; return ``(ticket, result)``.

        An exception raised by the call is raised here.
        """

    @property
    @abstractmethod
    def pending(self) -> int:
        """Calls queued or running that :meth:`next_done` has not returned yet."""

    def close(self) -> None:
        """Release workers; queued calls that did not run are dropped."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialExecutor(Executor):
    """Runs each call in this process, lazily, when :meth:`next_done` asks for it."""

    workers = 1

    def __init__(self) -> None:
        self._queue: deque[tuple[int, Callable, Any]] = deque()
        self._next = 0

    def submit(self, fn: Callable[[Any], Any], task: Any) -> int:
        ticket = self._next
        self._next += 1
        self._queue.append((ticket, fn, task))
        return ticket

    def next_done(self) -> tuple[int, Any]:
        if not self._queue:
            raise RuntimeError("next_done() called with nothing pending.")
        ticket, fn, task = self._queue.popleft()
        return ticket, fn(task)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._queue.clear()


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker when the process that started it dies (even by ``kill -9``).

    A daemon thread polls the parent pid (a dead parent's orphans are re-parented), every
    ``_PARENT_POLL_S`` seconds. Not Linux's ``PR_SET_PDEATHSIG``: it fires when the *thread*
    that started the worker ends, and the pool starts workers on demand from whichever thread
    submits (a pool restarted from a thread that then ended lost its workers, one of them
    holding the call queue's lock, and the next shutdown waited forever).
    """
    if os.getppid() != parent_pid:  # the parent died before this worker got here
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="memsim-parent-watch", daemon=True).start()


_PARENT_POLL_S = 0.5


def _init_worker(parent_pid: int | None = None) -> None:
    if parent_pid is not None:
        _exit_with_parent(parent_pid)
    # Ctrl-C goes to the whole process group: let the parent alone handle it (it keeps what
    # finished and shuts the pool down) instead of every worker printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Several workers on a few cores: one intra-op thread each (torch's and the Numba flip
    # kernels'), or they fight over cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if "numba" not in sys.modules:
        # Numba sizes its pool from this when imported. Once it is imported (the worker
        # unpickles memsim first), changing it makes every later compilation fail ("Cannot set
        # NUMBA_NUM_THREADS ... once the threads have been launched"); set_threads limits it.
        os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    set_threads(1)


def set_threads(n: int) -> None:
    """Use ``n`` intra-op threads in torch and in the Numba kernels of this process.

    Numba first: where its OpenMP thread pool shares torch's OpenMP runtime, starting the pool
    sets that runtime's thread count to ``NUMBA_NUM_THREADS``, so torch's count must come
    last (a ``torch.set_num_threads`` before the pool started was lost; ``memsim.jit`` now
    starts the pool on import and keeps torch's count).
    """
    import numba
    import torch

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    torch.set_num_threads(n)


class LocalPool(Executor):
    """A pool of local worker processes (``spawn``ed: safe with torch and OpenMP).

    A worker that dies mid-call (killed, out of memory) breaks the whole pool: the pool is
    started again and every call it lost runs again, each up to ``retries`` times. Calls that
    had finished keep their results, and every call carries its own seed, so the results are
    those of an undisturbed run.

    Parameters
    ----------
    workers : int
        Number of processes (at least 1).
    retries : int
        How often a call lost with a dead worker runs again before :class:`WorkerDied`.
    """

    def __init__(self, workers: int, *, retries: int = 3) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(
                f"The 'workers' parameter of LocalPool must be an int in [1, inf]. Got {workers!r}."
            )
        self.workers = workers
        self.retries = retries
        self._pool: ProcessPoolExecutor | None = self._new_pool()
        self._futures: dict[Future, tuple[int, Callable, Any]] = {}  # -> ticket, fn, task
        self._done: deque[tuple[int, Future]] = deque()
        self._lost: dict[int, int] = {}  # ticket -> times lost with a dead worker
        self._next = 0

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(os.getpid(),),
        )

    def submit(self, fn: Callable[[Any], Any], task: Any) -> int:
        ticket = self._next
        self._next += 1
        self._submit(ticket, fn, task)
        return ticket

    def _submit(self, ticket: int, fn: Callable[[Any], Any], task: Any) -> None:
        assert self._pool is not None, "submit() after close()"
        try:
            fut = self._pool.submit(fn, task)
        except BrokenProcessPool as broken:
            # A worker died after the last wait and before this call was queued: the call is
            # lost with it, as if it had been queued a moment earlier; next_done() restarts.
            fut = Future()
            fut.set_exception(broken)
        self._futures[fut] = (ticket, fn, task)

    def next_done(self) -> tuple[int, Any]:
        while not self._done:
            if not self._futures:
                raise RuntimeError("next_done() called with nothing pending.")
            done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
            if any(_lost_with_worker(fut) for fut in done):
                self._restart()
                continue
            # Sorted by ticket so that the hand-back order among simultaneous finishes is stable.
            for fut in sorted(done, key=lambda f: self._futures[f][0]):
                self._done.append((self._futures.pop(fut)[0], fut))
        ticket, fut = self._done.popleft()
        self._lost.pop(ticket, None)
        return ticket, fut.result()

    def _restart(self) -> None:
        """A worker died and took the pool with it: keep what finished, start a new pool and
        submit again what was lost, unless a call was lost more than ``retries`` times."""
        assert self._pool is not None
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
        for fut in self._futures:
            # A call queued while the broken pool was clearing its queue (CPython does not
            # lock that clearing against submit) is never settled by the shutdown: lost too.
            if not fut.done() and not fut.cancel():
                fut.set_exception(BrokenProcessPool("lost with its worker pool"))
        lost = []
        for fut, (ticket, fn, task) in sorted(self._futures.items(), key=lambda kv: kv[1][0]):
            if _lost_with_worker(fut):
                lost.append((ticket, fn, task))
                self._lost[ticket] = self._lost.get(ticket, 0) + 1
            else:
                self._done.append((ticket, fut))  # finished (a result, or the call's own error)
        self._futures.clear()
        worst = max(lost, key=lambda item: self._lost[item[0]])
        if self._lost[worst[0]] > self.retries:
            raise WorkerDied(
                f"Worker processes died {self._lost[worst[0]]} times while "
                f"{describe_task(worst[2])} was "
                "running (killed, or out of memory: fewer --workers use less); finished points "
                "are kept and running the same command again resumes."
            )
        self._pool = self._new_pool()
        for ticket, fn, task in lost:
            self._submit(ticket, fn, task)

    @property
    def pending(self) -> int:
        return len(self._futures) + len(self._done)

    def close(self) -> None:
        if self._pool is not None:
            if any(not fut.done() for fut in self._futures):
                # Closed with calls still running (an error, Ctrl-C): they are dropped, as the
                # Ray executor drops them; their points were never recorded and a re-run runs
                # them. Waiting for them held Ctrl-C up for as long as the slowest running
                # point (over a minute on a loaded machine compiling kernels). The pool has
                # no public way to stop a running call: its processes are terminated.
                for proc in list((self._pool._processes or {}).values()):
                    proc.terminate()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._futures.clear()


def _lost_with_worker(fut: Future) -> bool:
    """Whether a call never finished because its pool broke (or was shut down under it)."""
    return fut.cancelled() or isinstance(fut.exception(), BrokenProcessPool)


def make_executor(workers: int) -> Executor:
    """A :class:`SerialExecutor` for one worker, a :class:`LocalPool` otherwise."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"The 'workers' option must be an int in [1, inf]. Got {workers!r}.")
    return SerialExecutor() if workers == 1 else LocalPool(workers)


def map_unordered(
    executor: Executor,
    fn: Callable[[TaskT], ResultT],
    tasks: Iterable[TaskT],
    *,
    window: int | None = None,
) -> Iterator[tuple[TaskT, ResultT]]:
    """Yield ``(task, fn(task))`` as calls finish, keeping at most ``window`` in flight.

    A bounded window keeps memory flat for long task lists and lets the caller persist each
    result before the next batch is queued.
    """
    window = window or max(2 * executor.workers, 1)
    it = iter(tasks)
    by_ticket: dict[int, TaskT] = {}
    exhausted = False
    while True:
        while not exhausted and executor.pending < window:
            try:
                task = next(it)
            except StopIteration:
                exhausted = True
                break
            by_ticket[executor.submit(fn, task)] = task
        if executor.pending == 0:
            return
        ticket, result = executor.next_done()
        yield by_ticket.pop(ticket), result
