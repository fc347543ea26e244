"""The Ray executor: sweep points on Ray actors, on a local Ray instance or on a cluster.

Takes the local pool's place under the sweep driver (:mod:`memsim.experiment.points`) through
the three methods of :class:`~memsim.experiment.executor.Executor`. Each worker is a Ray
*actor*: a long-lived process that evaluates one point after another, so the per-process
caches of :class:`~memsim.experiment.points.NetworkEvaluator` (the trained network, the data
set, already on the device) are filled once per worker, not once per point. Points carry their
own seeds, so the results are those of one local worker, bit for bit.

The driver stays the only writer of the results store: actors return a point's outcome and
the driver appends it. Killing the driver loses only the points in flight (a re-run resumes);
a worker that dies mid-point (killed, out of memory, its node lost) is replaced and its point
runs again on another worker, up to ``retries`` times.

Where workers find data and checkpoints: a workload's data and checkpoints are read by path
(``MEMSIM_CACHE``, ``MEMSIM_DATA``, ``MEMSIM_SHARED``, the config's ``checkpoint`` keys,
relative paths from the driver's working directory). On a local Ray instance these are the
driver's own files. On a cluster every node must see the same paths (a shared file system, the
usual set-up on SLURM allocations); the driver's ``MEMSIM_*`` variables (and
``NUMBA_CACHE_DIR``, where compiled kernels are cached) and working directory are passed to
every actor. See ``docs/cluster.md``.

Ray is an optional dependency (``pip install -e ".[ray]"``); it is imported only when a
:class:`RayExecutor` is built.
"""

from __future__ import annotations

import importlib.util
import math
import os
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from memsim.compute import parse_device
from memsim.errors import WorkerDied, WorkerStartFailed, describe_task
from memsim.experiment.config import check_gpu_share
from memsim.experiment.executor import Executor

#: What is printed when Ray is missing.
MISSING_RAY = (
    "The Ray executor needs the optional 'ray' extra: pip install -e \".[ray]\" "
    '(or pip install "ray[client]").'
)
#: Environment variables passed from the driver to every actor.
_PASSED_ENV = (
    "MEMSIM_CACHE", "MEMSIM_DATA", "MEMSIM_SHARED", "MEMSIM_CONFIGS", "PYTHONPATH",
    "NUMBA_CACHE_DIR",
)  # fmt: skip


#: Seconds a cluster address has to answer a TCP connection (Ray itself retries for minutes).
CONNECT_TIMEOUT = 5.0
#: Addresses that name no host: the latest cluster started on this machine, or a new local one.
_NO_HOST = ("auto", "local")
#: What a gRPC client sends first: HTTP/2's connection preface, then an empty SETTINGS frame
#: (RFC 9113 §3.4). A Ray cluster's GCS and a Ray Client server are gRPC servers, so they
#: answer with a SETTINGS frame of their own; a port held by anything else (a web or SSH
#: server, a database, a process that never answers) does not, and ``ray.init`` would instead
#: retry it for minutes, printing Ray's own warnings every few seconds.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
#: An HTTP/2 frame header: 3 bytes of length, its type (4: SETTINGS), flags, stream id.
_H2_HEADER = 9


def check_ray_device(device: str, gpus_per_point: float) -> None:
    """Refuse a torch device that Ray workers with ``gpus_per_point`` of a GPU cannot use.

    Ray shows each worker the GPUs it reserved, numbered from ``cuda:0``: so an index names no
    particular GPU. A worker that reserves none is not hidden from the node's GPUs (Ray 2.60
    leaves ``CUDA_VISIBLE_DEVICES`` alone there): on CUDA it would compute on a GPU Ray does not
    account for, crowding the workers that reserved it, so CUDA needs a GPU share. A GPU share
    for workers computing on the CPU would hold GPUs idle. ``auto`` takes what the share gives
    (:func:`worker_device`).
    """
    # The devices every entry point accepts, whatever this machine has; auto as the workers see it.
    dev = parse_device(worker_device(device, gpus_per_point))
    if dev.type == "cpu":
        if gpus_per_point > 0:
            raise ValueError(
                f"gpus_per_point = {gpus_per_point:g} reserves GPUs for Ray workers that compute on "
                "the CPU (device 'cpu'): add --device cuda (or auto), or drop --gpus-per-point."
            )
    elif dev.type == "cuda":
        if dev.index is not None:
            raise ValueError(
                f"Device {device!r}: each Ray worker sees only the GPU it reserved, as 'cuda'; "
                "use --device cuda."
            )
        if gpus_per_point <= 0:
            given = f"gpus_per_point = {gpus_per_point:g}" if gpus_per_point else "No GPU share"
            raise ValueError(
                f"{given}: device 'cuda' with the Ray executor needs a GPU share above 0 per "
                "worker (Ray does not account for GPUs that workers use unreserved): "
                "--gpus-per-point 1 (a GPU per worker) or 0.25 (four workers per GPU)."
            )
    else:
        raise ValueError(f"Ray workers compute on cpu, cuda or auto. Got device {device!r}.")


def worker_device(device: str, gpus_per_point: float) -> str:
    """The device Ray workers compute on: ``auto`` is CUDA where each worker reserves a GPU
    share, else the CPU (never an unreserved GPU). Check it first with :func:`check_ray_device`."""
    if device.strip() == "auto":
        return "cuda" if gpus_per_point > 0 else "cpu"
    return str(parse_device(device))


def check_address(address: str | None) -> None:
    """Refuse, within twice :data:`CONNECT_TIMEOUT` seconds, a cluster address nothing answers
    at, or where what answers is no gRPC server (not a Ray GCS or Ray Client server):
    ``ray.init`` would retry either for minutes, printing its own warnings. ``None``, ``auto``
    and ``local`` name no host. With ``RAY_USE_TLS`` only the TCP connection is checked."""
    if address is None or address in _NO_HOST:
        return
    target = address.removeprefix("ray://")
    if target != address and importlib.util.find_spec("grpc") is None:
        raise ValueError(
            f"Ray cluster address {address!r}: Ray Client (ray://) needs grpcio, which the "
            '\'ray\' extra installs: pip install -e ".[ray]" (or pip install "ray[client]").'
        )
    host, sep, port = target.rpartition(":")
    host = host.strip("[]")  # [IPv6]:port
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"Ray cluster address {address!r}: expected auto, HOST:PORT (the head node's GCS, "
            "port 6379 by default) or ray://HOST:PORT (Ray Client, port 10001)."
        )
    try:
        conn = socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ValueError(
            f"Ray cluster address {address!r}: nothing answers at {host}:{port} ({reason}); "
            "start the cluster first (ray start --head) or check the address."
        ) from None
    with conn:
        # Ray's TLS mode wraps the gRPC in TLS: a plaintext preface proves nothing there.
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return
        problem = _not_grpc(conn, CONNECT_TIMEOUT)
    if problem:
        expected = "a Ray Client server" if target != address else "a Ray cluster's GCS"
        raise ValueError(
            f"Ray cluster address {address!r}: {host}:{port} answers, but not as {expected} "
            f"does (a gRPC server): {problem}; check the address (HOST:PORT is the head node's "
            "GCS, port 6379 by default; ray://HOST:PORT its Ray Client server, port 10001)."
        )


def _not_grpc(conn: socket.socket, timeout: float) -> str:
    """Why the peer of ``conn`` is no gRPC server, or ``""`` where it answers HTTP/2's
    connection preface with a SETTINGS frame (within ``timeout`` seconds)."""
    reply = b""
    try:
        conn.settimeout(timeout)
        conn.sendall(_H2_PREFACE)
        while len(reply) < _H2_HEADER:
            chunk = conn.recv(_H2_HEADER - len(reply))
            if not chunk:
                break
            reply += chunk
    except TimeoutError:
        return f"no answer to an HTTP/2 connection preface within {timeout:g} s"
    except (ConnectionResetError, BrokenPipeError):
        pass  # it hung up (what it sent, if anything, is in reply)
    except OSError as exc:
        return f"the connection failed ({exc.strerror or str(exc) or type(exc).__name__})"
    if len(reply) == _H2_HEADER and reply[3] == 4 and reply[5:9] == bytes(4):
        return ""
    if not reply:
        return "it closed the connection at an HTTP/2 connection preface"
    return f"it answered an HTTP/2 connection preface with {reply!r}"


def _auth_hint(address: str | None, error: str = "") -> str:
    """What to try when a cluster that answers refuses this driver: token authentication, or
    for a Ray Client server that failed to start the driver's session, the head's gRPC."""
    if "Initialization failure from server" in error:
        return (
            ". The head's Ray Client server could not start this driver's session (its "
            "ray_client_server*.err says why); with Ray 2.60 that was a gRPC crash after a fork, "
            "avoided by starting the head with GRPC_ENABLE_FORK_SUPPORT=0 (docs/cluster.md)"
        )
    if address is None or address in _NO_HOST:
        return ""
    if os.environ.get("RAY_AUTH_MODE") == "token":
        return (
            ". It may not be a Ray cluster (its GCS, or a Ray Client server for ray://), or its "
            "token may differ from this driver's (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
        )
    return (
        ". Either it is not a Ray cluster (its GCS, or a Ray Client server for ray://), or the "
        "cluster uses token authentication (`ray start` enables it by default from Ray 2.59 on): "
        "then set RAY_AUTH_MODE=token for this command too (the token comes from "
        "RAY_AUTH_TOKEN or ~/.ray/auth_token)."
    )


def check_resources(
    resources: dict[str, float], workers: int, gpus_per_point: float, address: str | None
) -> None:
    """Refuse a run whose workers do not all fit on the cluster: an actor Ray cannot place
    waits forever, and the points handed to it with it."""
    where = "the local Ray instance" if address is None else f"the Ray cluster at {address!r}"
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if workers > cpus + 1e-9:
        raise ValueError(
            f"--workers {workers} needs {workers} CPUs (one per Ray worker), but {where} has "
            f"{cpus:g}: use --workers {max(1, math.floor(cpus + 1e-9))} or a larger cluster."
        )
    need = workers * gpus_per_point
    if need > gpus + 1e-9:
        fix = (
            "use --device cpu without --gpus-per-point"
            if gpus == 0
            else "use fewer workers or a smaller --gpus-per-point"
        )
        raise ValueError(
            f"--workers {workers} with --gpus-per-point {gpus_per_point:g} needs {need:g} GPUs, "
            f"but {where} has {gpus:g}: {fix}."
        )


def _reason(exc: BaseException) -> str:
    """The last line of an error's text: the exception a worker's start-up raised."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def require_ray():
    """The ``ray`` module, or an :class:`ImportError` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(MISSING_RAY) from exc
    return ray


class _Worker:
    """The actor body: evaluates points in one long-lived process."""

    def __init__(self, cwd: str, threads: int) -> None:
        # Relative paths in configs mean what they mean on the driver (shared file systems).
        if os.path.isdir(cwd):
            os.chdir(cwd)
        from memsim.experiment.executor import set_threads

        set_threads(max(1, threads))

    def run(self, fn: Callable[[Any], Any], task: Any) -> Any:
        return fn(task)

    def pid(self) -> int:
        return os.getpid()


class RayExecutor(Executor):
    """Runs calls on a fixed set of Ray actors, at most one call per actor at a time.

    Parameters
    ----------
    workers : int
        Number of actors (each takes one CPU, and ``gpus_per_point`` of a GPU).
    address : str, optional
        An existing cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); None starts
        a local Ray instance with ``workers`` CPUs. A process already connected to Ray (``ray.init``
        called before) keeps its connection, whatever ``address`` says.
    gpus_per_point : float
        GPU share per actor: 0.25 lets four actors, hence four points, share one GPU.
    retries : int
        How often a point whose worker died is run again before the error is raised.

    Raises
    ------
    ImportError
        Ray is not installed (the message names the extra).
    ValueError
        Nothing answers at ``address`` (or what answers is no gRPC server, hence no Ray
        cluster: :func:`check_address`), or the workers do not all fit on the cluster (a CPU
        each, ``gpus_per_point`` of a GPU each): refused at once, where Ray would wait.
    """

    def __init__(
        self,
        workers: int,
        *,
        address: str | None = None,
        gpus_per_point: float = 0.0,
        retries: int = 3,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(
                f"The 'workers' parameter of RayExecutor must be an int in [1, inf]. Got {workers!r}."
            )
        if isinstance(gpus_per_point, bool) or not 0 <= float(gpus_per_point):
            raise ValueError(
                "The 'gpus_per_point' parameter of RayExecutor must be a float in [0, inf]. "
                f"Got {gpus_per_point!r}."
            )
        check_gpu_share(float(gpus_per_point))
        ray = require_ray()
        self._ray = ray
        self.workers = workers
        self.retries = int(retries)
        self._started = False
        if not ray.is_initialized():
            env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
            env["OMP_NUM_THREADS"] = "1"
            kwargs: dict[str, Any] = {
                "runtime_env": {"env_vars": env},
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address is None:
                # "local": a private instance even where `ray start` left a cluster running
                # (or its address file behind), which a bare ray.init() would join.
                kwargs["num_cpus"] = workers
            check_address(address)
            try:
                ray.init(address=address or "local", **kwargs)
            except ConnectionError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
                raise ValueError(
                    f"Ray cluster address {address!r}: {first}{_auth_hint(address, str(exc))}"
                ) from None
            self._started = True
        try:
            check_resources(ray.cluster_resources(), workers, float(gpus_per_point), address)
        except ValueError:
            if self._started:
                ray.shutdown()
            raise
        self._actor_cls = ray.remote(num_cpus=1, num_gpus=float(gpus_per_point))(_Worker)
        self._cwd = os.getcwd()
        self._idle: deque = deque(self._new_actor() for _ in range(workers))
        self._queue: deque[tuple[int, Callable, Any]] = deque()
        self._running: dict[
            Any, tuple[int, Callable, Any, Any]
        ] = {}  # ref -> ticket, fn, task, actor
        self._attempts: dict[int, int] = {}
        self._fn_refs: dict[int, tuple[Callable, Any]] = {}
        self._next = 0

    def _new_actor(self):
        return self._actor_cls.remote(self._cwd, 1)

    def _fn_ref(self, fn: Callable) -> Any:
        # PERF: the evaluator goes into the object store once, not once per point.
        if id(fn) not in self._fn_refs:
            self._fn_refs[id(fn)] = (fn, self._ray.put(fn))
        return self._fn_refs[id(fn)][1]

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            ticket, fn, task = self._queue.popleft()
            actor = self._idle.popleft()
            ref = actor.run.remote(self._fn_ref(fn), task)
            self._running[ref] = (ticket, fn, task, actor)

    def submit(self, fn: Callable[[Any], Any], task: Any) -> int:
        ticket = self._next
        self._next += 1
        self._queue.append((ticket, fn, task))
        self._dispatch()
        return ticket

    def next_done(self) -> tuple[int, Any]:
        ray = self._ray
        while True:
            if not self._running:
                raise RuntimeError("next_done() called with nothing pending.")
            (ref,), _ = ray.wait(list(self._running), num_returns=1)
            ticket, fn, task, actor = self._running.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                self._idle.append(actor)
                self._dispatch()
                raise exc.as_instanceof_cause() from None
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                ray.kill(actor, no_restart=True)
                if getattr(exc, "actor_init_failed", False):
                    # It never started (memsim not importable on its node, say): another would
                    # fail the same way.
                    raise WorkerStartFailed(
                        f"A Ray worker could not start: {_reason(exc)}. Every node needs memsim "
                        "installed at the driver's path (a shared file system: docs/cluster.md)."
                    ) from None
                # The worker died mid-point: replace it and run the point again.
                attempts = self._attempts.get(ticket, 0) + 1
                self._attempts[ticket] = attempts
                self._idle.append(self._new_actor())
                if attempts > self.retries:
                    self._dispatch()
                    raise WorkerDied(
                        f"Ray workers died {attempts} times running {describe_task(task)} "
                        "(killed, out of memory, or their node lost); finished points are kept "
                        "and running the same command again resumes."
                    ) from exc
                self._queue.appendleft((ticket, fn, task))
                self._dispatch()
                continue
            self._attempts.pop(ticket, None)
            self._idle.append(actor)
            self._dispatch()
            return ticket, result

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._running)

    def close(self) -> None:
        ray = self._ray
        self._queue.clear()
        for ticket_fn_task_actor in self._running.values():
            ray.kill(ticket_fn_task_actor[3], no_restart=True)
        for actor in self._idle:
            ray.kill(actor, no_restart=True)
        self._running.clear()
        self._idle.clear()
        self._fn_refs.clear()
        if self._started:
            ray.shutdown()
