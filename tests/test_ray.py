"""The Ray executor on a local Ray instance (2 CPUs): the serial executor's points, bit for bit,
also when a worker or the driver is killed mid-run.

Selected with ``-m ray``; skipped when the optional ``ray`` extra is not installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import helpers
import pandas as pd
import pytest
from helpers import KillWorkerOnce, interrupt_after_points, kill_after_points

from memsim.cli.main import main
from memsim.experiment.points import NetworkEvaluator
from memsim.experiment.ray_executor import check_address
from memsim.experiment.run import DEFAULT_CONFIG, RunOptions, load_experiment, run_experiment
from memsim.experiment.store import POINTS_LOG

ray = pytest.importorskip("ray", reason="the optional 'ray' extra is not installed")

pytestmark = [pytest.mark.ray, pytest.mark.integration]

# One real curve (the digits CNN), few cheap points: every Ray test stays within seconds of work.
SMALL = [
    'formats=["float32"]',
    'policies=["baseline"]',
    "grid.p_min=1e-4",
    "grid.points_per_decade=2",
    "sweep.repeats=2",
    "sweep.images=32",
    "memory.enabled=false",
]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with 2 CPUs for the module (starting one takes seconds)."""
    env = {k: os.environ[k] for k in ("MEMSIM_CACHE", "PYTHONPATH") if k in os.environ}
    ray.init(
        address="local",  # private, even if a `ray start` cluster runs on this machine
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {**env, "OMP_NUM_THREADS": "1"}},
    )
    # Classes of tests/ (the killing evaluator) travel by value: workers cannot import tests/.
    for module in (sys.modules[__name__], helpers):
        ray.cloudpickle.register_pickle_by_value(module)
    yield
    for module in (sys.modules[__name__], helpers):
        ray.cloudpickle.unregister_pickle_by_value(module)
    ray.shutdown()


@pytest.fixture(scope="module")
def serial_points(tmp_path_factory):
    config, _ = load_experiment(overrides=SMALL)
    out = tmp_path_factory.mktemp("serial")
    run_experiment(config, RunOptions(out=out, progress=False), sweep_only=True)
    return pd.read_csv(out / "points.csv")


def _ray_run(out: Path, evaluator=None) -> pd.DataFrame:
    config, _ = load_experiment(overrides=SMALL)
    run = RunOptions(out=out, workers=2, executor="ray", progress=False)
    run_experiment(config, run, evaluator=evaluator, sweep_only=True)
    return pd.read_csv(out / "points.csv")


def _ray_sweep_cmd(out: Path, *options: str) -> list[str]:
    """``memsim sweep`` of the SMALL config into ``out`` on two Ray workers, plus ``options``."""
    cmd = [sys.executable, "-m", "memsim", "sweep", os.fspath(DEFAULT_CONFIG), "--no-progress"]
    cmd += ["--out", os.fspath(out), "--executor", "ray", "--workers", "2", *options]
    for item in SMALL:
        cmd += ["--set", item]
    return cmd


def _log_lines(out: Path) -> int:
    return (out / POINTS_LOG).read_text().count("\n")


def test_ray_executor_gives_the_serial_executors_points(local_ray, serial_points, tmp_path):
    points = _ray_run(tmp_path)
    assert len(points) > 10
    pd.testing.assert_frame_equal(points, serial_points)
    assert _log_lines(tmp_path) == len(serial_points)


def test_a_worker_killed_mid_point_has_its_point_retried(local_ray, serial_points, tmp_path):
    config, _ = load_experiment(overrides=SMALL)
    victim = serial_points["point_id"].iloc[len(serial_points) // 2]
    marker = tmp_path / "killed.pid"
    evaluator = KillWorkerOnce(
        NetworkEvaluator(config.workloads, config.policies, config.sweep), victim, str(marker)
    )
    points = _ray_run(tmp_path / "out", evaluator)
    assert marker.exists(), "the worker was never killed"
    assert int(marker.read_text()) != os.getpid()  # a worker died, not this driver
    pd.testing.assert_frame_equal(points, serial_points)
    assert _log_lines(tmp_path / "out") == len(serial_points)  # nothing missing or repeated


def test_driver_killed_with_sigkill_resumes_to_the_same_table(local_ray, serial_points, tmp_path):
    out = tmp_path / "killed"
    cmd = _ray_sweep_cmd(out)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Its own session: the driver's local Ray instance shares its process group, so all of it
    # can be cleaned up after the driver alone was killed.
    kill_after_points(cmd, out / POINTS_LOG, 4, timeout_s=180, env=env, new_session=True)
    done_before = _log_lines(out)
    assert 4 <= done_before < len(serial_points)

    resumed = _ray_run(out)
    pd.testing.assert_frame_equal(resumed, serial_points)
    assert _log_lines(out) == len(serial_points)


def test_ctrl_c_stops_a_ray_run_and_its_instance_and_a_rerun_resumes(serial_points, tmp_path):
    """Ctrl-C during a run on a private Ray instance: exit 130 with the one-line message, none
    of the instance's processes outlive the driver, and the same command resumes to the
    serial table."""
    out = tmp_path / "interrupted"
    cmd = _ray_sweep_cmd(out)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done, status, err, left = interrupt_after_points(
        cmd, out / POINTS_LOG, 4, timeout_s=180, env=env
    )
    assert status == 130, err[-1000:]
    assert err.strip().splitlines()[-1] == (
        "memsim: interrupted; finished work is kept and a re-run resumes."
    )
    assert left == []
    assert 4 <= done < len(serial_points)
    pd.testing.assert_frame_equal(_ray_run(out), serial_points)


def test_the_bnn_study_on_ray_gives_the_serial_points(local_ray, tmp_path):
    """Every study runs its points through the run's executor: the binarized-network study's
    points on two Ray actors are those of one local worker."""
    from test_bnn_study import TINY

    from memsim.studies.bnn import run_study

    serial = run_study(TINY, tmp_path / "serial", progress=False)["points"]
    on_ray = run_study(TINY, tmp_path / "ray", workers=2, executor="ray", progress=False)
    pd.testing.assert_frame_equal(on_ray["points"], serial)
    meta = json.loads((tmp_path / "ray" / "metadata.json").read_text())
    assert meta["executor"] == "ray"


def test_the_search_takes_the_run_executor(local_ray, tmp_path, monkeypatch):
    """The mixed-policy search asks for its executor by the run options (it used to build a
    local one whatever ``executor`` said): Ray actors, and the same choice as locally."""
    from test_search import SEARCH_CONFIG

    from memsim.experiment import launch
    from memsim.experiment.ray_executor import RayExecutor
    from memsim.studies.search import load_search, run_search

    cfg = tmp_path / "search.toml"
    cfg.write_text(SEARCH_CONFIG.replace("max_verifications = 6", "max_verifications = 2"))
    built = []
    real = launch.executor_for
    monkeypatch.setattr(launch, "executor_for", lambda run: built.append(real(run)) or built[-1])
    frames = {}
    for name, changes in (("local", {}), ("ray", {"executor": "ray", "workers": 2})):
        config, search, run = load_search(cfg, [])
        run = dataclasses.replace(run, out=tmp_path / name, progress=False, **changes)
        frames[name] = pd.read_csv(run_search(config, search, run) / "search.csv")
    assert isinstance(built[-1], RayExecutor) and not isinstance(built[0], RayExecutor)
    pd.testing.assert_frame_equal(frames["ray"], frames["local"])


def test_workers_the_cluster_cannot_place_are_refused_before_anything_is_written(
    local_ray, tmp_path
):
    """An actor Ray cannot place waits forever, and with it the points handed to it: more
    workers than CPUs, or GPU shares the cluster lacks, are refused at once, with no output."""
    config, _ = load_experiment(overrides=SMALL)
    out = tmp_path / "never"
    too_many = RunOptions(out=out, workers=3, executor="ray", progress=False)
    with pytest.raises(ValueError, match=r"--workers 3 needs 3 CPUs .* has 2: use --workers 2"):
        run_experiment(config, too_many, sweep_only=True)
    gpus = ray.cluster_resources().get("GPU", 0.0)
    # Two workers with a whole GPU each (a share is at most one GPU): more than a machine with
    # one GPU or none has.
    if gpus < 2:
        no_gpu = RunOptions(out=out, workers=2, executor="ray", device="auto", gpus_per_point=1.0)
        with pytest.raises(ValueError, match=r"needs 2 GPUs, but the local Ray instance has"):
            run_experiment(config, no_gpu, sweep_only=True)
    assert not out.exists()
    assert ray.is_initialized()  # the instance this process started is left running


def test_a_cluster_address_that_does_not_answer_is_refused_in_seconds(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"  # closed once the socket is
    out = tmp_path / "never"
    argv = ["sweep", os.fspath(DEFAULT_CONFIG), "--out", os.fspath(out), "--no-progress"]
    assert main([*argv, "--executor", "ray", "--address", address]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"memsim sweep: error: Ray cluster address '{address}': nothing answers")
    assert not out.exists()


#: The first frame a gRPC server sends: an empty HTTP/2 SETTINGS frame (what the pre-check asks).
H2_SETTINGS = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


@contextlib.contextmanager
def _listener(reply: bytes | None):
    """A local TCP port held by something that is no Ray cluster: it answers every connection
    with ``reply`` and hangs up, or (``None``) accepts and never says anything. With
    :data:`H2_SETTINGS` it passes for a gRPC server."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            if reply is None:
                stop.wait()
            else:
                with contextlib.suppress(OSError):
                    conn.sendall(reply)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (None, "no answer to an HTTP/2 connection preface within 0.5 s"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "answered an HTTP/2 connection preface with b'HTTP/1.1 '"),
        (b"", "it closed the connection at an HTTP/2 connection preface"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "answered an HTTP/2 connection preface with b'SSH-2.0-O'"),
    ],
)  # fmt: skip
def test_an_address_held_by_no_ray_cluster_is_one_line_in_seconds(
    reply, why, tmp_path, capfd, monkeypatch
):
    """A port where something answers TCP but is no Ray cluster passed the connection check;
    ``ray.init`` then retried it for minutes, its C++ layer printing a warning every few
    seconds. It is refused by the pre-check, one line naming the address, nothing written."""
    from memsim.experiment import ray_executor

    monkeypatch.setattr(ray_executor, "CONNECT_TIMEOUT", 0.5)
    out = tmp_path / "never"
    with _listener(reply) as address:
        start = time.monotonic()
        argv = ["run", os.fspath(DEFAULT_CONFIG), "--out", os.fspath(out), "--no-progress"]
        assert main([*argv, "--executor", "ray", "--address", address]) == 2
        assert time.monotonic() - start < 30
        with pytest.raises(ValueError, match=r"answers, but not as a Ray Client server does"):
            check_address(f"ray://{address}")
    captured = capfd.readouterr()
    (line,) = captured.err.strip().splitlines()  # Ray never started: none of its warnings
    assert line.startswith(
        f"memsim run: error: Ray cluster address '{address}': {address} answers, but not as "
        "a Ray cluster's GCS does (a gRPC server): "
    )
    assert why in line
    assert not out.exists()


def test_the_address_check_passes_a_ray_clusters_gcs(local_ray, monkeypatch):
    """What the pre-check asks (an HTTP/2 SETTINGS frame back) a real GCS answers, token
    authentication or not; with Ray's TLS only the TCP connection is checked."""
    gcs = ray.get_runtime_context().gcs_address
    check_address(gcs)
    port = gcs.rpartition(":")[2]
    check_address(f"127.0.0.1:{port}")
    with _listener(b"HTTP/1.1 400 Bad Request\r\n\r\n") as address:
        monkeypatch.setenv("RAY_USE_TLS", "1")
        check_address(address)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def head_node(tmp_path):
    """A Ray cluster started the way a cluster's head node is (``ray start --head``, 2 CPUs),
    in its own process group, torn down afterwards; yields its addresses: ``HOST:PORT`` (the
    head's GCS) and ``ray://HOST:PORT`` (its Ray Client server), and the drivers' environment.

    Token authentication is off on both sides (``RAY_AUTH_MODE=disabled``), whatever the Ray
    version's default: this is about joining a cluster by address, not about Ray's security.
    """
    port, client_port = _free_port(), _free_port()  # ephemeral: clear of Ray's worker ports
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    # Its own temporary folder (short: Ray's sockets live there), so that the note `ray start`
    # leaves for `address="auto"` (removed only by `ray stop`, which stops every Ray process
    # here) goes away with it.
    temp = tempfile.mkdtemp(prefix="memsim-ray-")
    # GRPC_ENABLE_FORK_SUPPORT=0: Ray 2.60's client proxier forks the driver's server while
    # gRPC threads run, and crashed in gRPC after the fork ("Check failed: next_worker->state
    # == KICKED") on 1 or 2 connections in 3 here; none in 12 with it (docs/cluster.md).
    head_env = {**env, "RAY_TMPDIR": temp, "GRPC_ENABLE_FORK_SUPPORT": "0"}
    ray_cli = Path(sys.executable).with_name("ray")
    cmd = [os.fspath(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2"]
    cmd += [f"--ray-client-server-port={client_port}"]
    cmd += ["--include-dashboard=false", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
    head = subprocess.Popen(
        cmd,
        env=head_env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "head.log").open("w"),
        start_new_session=True,
    )
    address, client = f"127.0.0.1:{port}", f"ray://127.0.0.1:{client_port}"
    try:
        deadline = time.monotonic() + 120
        for answering in (address, client):
            while True:
                assert head.poll() is None, (tmp_path / "head.log").read_text()[-2000:]
                try:
                    check_address(answering)
                    break
                except ValueError:
                    assert time.monotonic() < deadline, f"{answering} never answered"
                    time.sleep(0.5)
        yield {"gcs": address, "client": client}, env
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass  # `ray start --block` takes ~30 s to wind down; its processes need no care
        with contextlib.suppress(ProcessLookupError):  # none left is fine
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.parametrize("via", ["gcs", "client"])
def test_a_running_cluster_joined_by_address_gives_the_serial_points(
    via, head_node, serial_points, tmp_path
):
    """`--address HOST:PORT` joins a cluster someone else started (the SLURM recipe's step),
    `--address ray://HOST:PORT` through Ray Client (a driver on another machine): the driver
    neither starts nor stops it, and the points are one local worker's."""
    addresses, env = head_node
    address = addresses[via]
    out = tmp_path / "out"
    cmd = _ray_sweep_cmd(out, "--address", address)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pd.testing.assert_frame_equal(pd.read_csv(out / "points.csv"), serial_points)
    assert _log_lines(out) == len(serial_points)
    check_address(address)  # the cluster outlives the driver that joined it


def test_a_cluster_that_refuses_the_driver_gets_a_hint_at_token_authentication(monkeypatch):
    """Ray 2.59 and later start clusters with token authentication; a driver without
    ``RAY_AUTH_MODE=token`` is refused with a bare "Failed to connect": the error says why."""
    from memsim.experiment.ray_executor import RayExecutor

    def refuse(address=None, **kwargs):
        raise ConnectionError(f"Failed to connect to Ray cluster at {address}")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    with _listener(H2_SETTINGS) as address:  # answers as a gRPC server: passes the pre-check
        with pytest.raises(ValueError) as refused:
            RayExecutor(1, address=address)
        message = str(refused.value)
        assert message.startswith(f"Ray cluster address '{address}': Failed to connect")
        assert "set RAY_AUTH_MODE=token" in message and "\n" not in message
        monkeypatch.setenv("RAY_AUTH_MODE", "token")  # already set: the other causes
        with pytest.raises(ValueError) as refused:
            RayExecutor(1, address=address)
        message = str(refused.value)
        assert "Failed to connect to Ray cluster at " in message and "\n" not in message
        assert "may not be a Ray cluster" in message and "token may differ" in message
        assert "set RAY_AUTH_MODE=token" not in message

        def no_session(address=None, **kwargs):  # what Ray Client says when the head's fails
            raise ConnectionError("Initialization failure from server:\n")

        monkeypatch.setattr(ray, "init", no_session)
        with pytest.raises(ValueError) as refused:
            RayExecutor(1, address=f"ray://{address}")
        message = str(refused.value)
        assert "Initialization failure from server" in message and "\n" not in message
        assert "GRPC_ENABLE_FORK_SUPPORT=0" in message and "RAY_AUTH_MODE" not in message


class WorkerWithoutMemsim:
    """An actor body that fails to start, as on a node where memsim is not installed."""

    def __init__(self, cwd: str, threads: int) -> None:
        raise ModuleNotFoundError("No module named 'memsim'")

    def run(self, fn, task):  # pragma: no cover - never reached
        return fn(task)


def test_a_worker_that_cannot_start_is_one_clear_error_not_retried(local_ray):
    """A worker whose start-up fails (memsim missing on its node) would fail on every retry:
    the run stops at once with the reason, instead of "died 4 times (out of memory?)"."""
    from memsim.errors import WorkerStartFailed
    from memsim.experiment.ray_executor import RayExecutor

    class NodesWithoutMemsim(RayExecutor):
        def _new_actor(self):
            started.append(1)
            return ray.remote(num_cpus=1)(WorkerWithoutMemsim).remote(self._cwd, 1)

    started: list[int] = []
    with NodesWithoutMemsim(1) as executor, pytest.raises(WorkerStartFailed) as failed:
        executor.submit(abs, -1)
        executor.next_done()
    message = str(failed.value)
    assert message.startswith("A Ray worker could not start: ")
    assert "No module named 'memsim'" in message and "\n" not in message
    assert len(started) == 1  # no replacement was started: nothing retried
