"""The local process pool when a worker dies mid-call (killed, out of memory): the pool starts
again, the lost calls run again, and the results are those of an undisturbed run; a call that
keeps killing its worker ends the run with one clear error, finished results kept."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from memsim.errors import WorkerDied
from memsim.experiment.executor import LocalPool, map_unordered


def square_or_die(task: tuple[int, str]) -> tuple[int, int]:
    """``(n, n * n)``; kills its own process at ``n == 3`` while the marker file is absent."""
    n, marker = task
    if n == 3 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return n, n * n


def always_dies(task: int) -> int:
    if task == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return task


def test_a_call_lost_with_a_killed_worker_runs_again(tmp_path):
    marker = tmp_path / "killed.pid"
    tasks = [(n, str(marker)) for n in range(8)]
    with LocalPool(2) as pool:
        results = dict(result for _, result in map_unordered(pool, square_or_die, tasks))
    assert marker.exists(), "no worker was killed"
    assert int(marker.read_text()) != os.getpid()  # a worker died, not this process
    assert results == {n: n * n for n in range(8)}  # every call once, none lost


def test_a_call_submitted_after_a_worker_died_runs_on_the_next_pool(tmp_path):
    """The pool can break between two waits, before the next call is queued (a point is
    queued right after a finished one, while another worker is being killed): that call is
    lost with the pool and runs on the next one, instead of ending the run (a CI failure)."""
    import time

    marker = tmp_path / "killed.pid"
    with LocalPool(2) as pool:
        first = pool.submit(square_or_die, (3, str(marker)))
        deadline = time.monotonic() + 120
        while not pool._pool._broken:  # the killed worker has broken the pool
            assert time.monotonic() < deadline, "the pool never saw its worker die"
            time.sleep(0.02)
        second = pool.submit(square_or_die, (4, str(marker)))  # raised BrokenProcessPool
        results = dict(pool.next_done() for _ in range(2))
    assert marker.exists()
    assert results == {first: (3, 9), second: (4, 16)}


def test_a_call_the_broken_pool_never_settles_counts_as_lost(tmp_path):
    """CPython clears a broken pool's queue without locking it against submit: a call queued
    in between is never settled, not even by shutdown. The restart must count it as lost and
    run it again, not wait for it forever (the orphan is planted here to make that certain)."""
    import threading
    from concurrent.futures import Future

    marker = tmp_path / "killed.pid"
    pool = LocalPool(2)
    try:
        killer = pool.submit(square_or_die, (3, str(marker)))
        orphan = Future()  # as queued after the clearing: never running, never done
        pool._futures[orphan] = (99, square_or_die, (5, str(marker)))
        results: dict = {}

        def collect():
            results.update(pool.next_done() for _ in range(2))

        worker = threading.Thread(target=collect, daemon=True)
        worker.start()
        worker.join(timeout=120)
        assert not worker.is_alive(), "next_done() waited forever for a call the pool lost"
        assert results == {killer: (3, 9), 99: (5, 25)}
    finally:
        pool.close()


def worker_pid(_task: object) -> int:
    return os.getpid()


def test_workers_outlive_the_thread_that_started_them():
    """The pool starts workers on demand from the thread that submits. Linux's parent-death
    signal follows that thread, not the process: with it, workers died when a thread that
    drove the pool ended (one holding the call queue's lock, so the next shutdown hung)."""
    import threading
    import time

    pool = LocalPool(2)
    try:
        got: list = []

        def drive() -> None:  # starts the worker (on its first submit) and ends
            pool.submit(worker_pid, 0)
            got.append(pool.next_done())

        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        driver.join(timeout=120)
        assert got, "the call never finished"
        pid = got[0][1]
        time.sleep(1.0)  # the parent-death signal, if set, has fired by now
        os.kill(pid, 0)  # raises ProcessLookupError if the worker died with the thread
        assert pool.submit(worker_pid, 1) == 1 and pool.next_done()[0] == 1
    finally:
        pool.close()


def test_a_call_that_keeps_killing_its_worker_is_one_clear_error():
    done = []
    with LocalPool(2, retries=1) as pool, pytest.raises(WorkerDied) as died:
        for _, result in map_unordered(pool, always_dies, range(4)):
            done.append(result)
    message = str(died.value)
    assert message.startswith(
        "Worker processes died 2 times while 1 was running"
    )  # a bare task: repr
    assert "finished points are kept" in message and "\n" not in message
    assert 1 not in done


def test_the_cli_prints_a_dead_worker_as_one_line(tmp_path, monkeypatch, capsys):
    from memsim.cli.main import main
    from memsim.experiment import run

    def die(*args, **kwargs):
        raise WorkerDied("Worker processes died 4 times while point x was running.")

    monkeypatch.setattr(run, "run_experiment", die)
    argv = ["sweep", os.fspath(run.DEFAULT_CONFIG), "--out", os.fspath(tmp_path / "out")]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1] == "memsim sweep: error: Worker processes died 4 times while point x was running."
    )


def test_errors_name_a_sweep_point_by_its_id():
    from types import SimpleNamespace

    from memsim.errors import describe_task

    assert (
        describe_task(SimpleNamespace(id="vgg_A|float32|1e-3|r0")) == "point vgg_A|float32|1e-3|r0"
    )
    assert describe_task((3, "x")) == "(3, 'x')"


def slow_call(folder: str) -> int:
    """Says it started, works for a minute, then says it finished."""
    Path(folder, "started").write_text(str(os.getpid()))
    import time

    time.sleep(60)
    Path(folder, "finished").write_text("")
    return 0


def test_closing_with_a_call_running_drops_it_instead_of_waiting(tmp_path):
    """As on Ctrl-C or an error: the running call is dropped (its point was never recorded, a
    re-run runs it), its worker stopped, instead of close() waiting for it to finish."""
    import time

    pool = LocalPool(1)
    pool.submit(slow_call, str(tmp_path))
    while not (tmp_path / "started").exists():
        time.sleep(0.05)
    worker = int((tmp_path / "started").read_text())
    pool.close()
    assert not (tmp_path / "finished").exists()  # not waited for
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)  # the worker is gone
    assert pool.pending == 0
