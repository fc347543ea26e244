"""Scale-out run options: executor choice, the missing Ray extra, compute dtype as identity."""

from __future__ import annotations

import os
import socket
import sys

import pytest
import torch

from memsim.cli.experiment import _options
from memsim.cli.main import build_parser, main
from memsim.config import ConfigError
from memsim.experiment.config import RunOptions
from memsim.experiment.launch import check_engine, check_executor
from memsim.experiment.ray_executor import (
    check_address,
    check_ray_device,
    check_resources,
    worker_device,
)
from memsim.experiment.run import DEFAULT_CONFIG, load_experiment
from memsim.experiment.store import config_hash


def test_missing_ray_is_a_one_line_error_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as if not installed
    out = tmp_path / "never"
    status = main(
        ["sweep", os.fspath(DEFAULT_CONFIG), "--out", os.fspath(out), "--executor", "ray"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith("memsim sweep: error: ")
    assert "'ray' extra" in err[-1] and 'pip install -e ".[ray]"' in err[-1]
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"executor": "dask"}, "'executor' parameter of run must be one of"),
        ({"executor": "ray", "gpus_per_point": -0.5}, "'gpus_per_point' parameter of run"),
    ],
)
def test_bad_run_options_are_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        RunOptions(**changes)


def test_ray_only_options_on_a_local_run_are_refused_when_it_starts(tmp_path):
    run = RunOptions(address="auto", out=tmp_path / "never")  # merged later from flags and file
    with pytest.raises(ValueError, match=r"need executor = \"ray\"\. Got address = 'auto' with"):
        check_executor(run)
    config, _ = load_experiment(overrides=["sweep.images=8"])
    from memsim.experiment.run import run_experiment

    with pytest.raises(ValueError, match=r"Got address = 'auto' with executor = 'local'"):
        run_experiment(config, run, sweep_only=True)
    assert not (tmp_path / "never").exists()


def test_a_run_table_address_is_joined_by_the_command_line_executor():
    """[run] address (or --set run.address) with --executor ray on the command line."""
    args = build_parser().parse_args(
        ["sweep", "default", "--set", 'run.address="head:6379"', "--executor", "ray"]
    )
    _, run = _options(args)
    assert (run.executor, run.address) == ("ray", "head:6379")


def test_run_options_from_the_run_table():
    _, run = load_experiment(
        overrides=['run.executor="ray"', "run.gpus_per_point=0.25", 'run.address="auto"']
    )
    assert (run.executor, run.gpus_per_point, run.address) == ("ray", 0.25, "auto")


def test_compute_dtype_is_part_of_the_identity_and_the_default_keeps_old_hashes():
    plain, _ = load_experiment()
    f32, _ = load_experiment(overrides=['sweep.compute_dtype="float32"'])
    assert f32.sweep.compute_dtype == "float32"
    assert f32.digest() != plain.digest()
    # Results folders written before the key existed keep their hash.
    before = plain.to_dict()
    del before["sweep"]["compute_dtype"]
    before.pop("report")  # likewise a later addition, left out at its default
    del before["memory"]["latency_draws"]  # and another
    del before["sweep"]["flush_denormals"]  # and another
    before["adaptive"] = {"enabled": False}  # left out while adaptive mode is off
    assert plain.digest() == config_hash(before)


def test_bad_compute_dtype_names_the_key():
    with pytest.raises(ConfigError, match="'compute_dtype' parameter of sweep"):
        load_experiment(overrides=['sweep.compute_dtype="int4"'])


def test_cli_scale_options_reach_the_config_and_run_options():
    args = build_parser().parse_args(
        ["sweep", "default", "--compute-dtype", "float32", "--executor", "ray",
         "--address", "auto", "--gpus-per-point", "0.5", "--workers", "3"]
    )  # fmt: skip
    config, run = _options(args)
    assert config.sweep.compute_dtype == "float32"
    assert (run.executor, run.address, run.gpus_per_point, run.workers) == ("ray", "auto", 0.5, 3)


def test_executor_local_on_the_command_line_drops_a_config_s_ray_only_options():
    """A config whose [run] table joins a cluster still runs locally with --executor local;
    the Ray-only options given as flags too are refused with it."""
    ray_table = ["--set", 'run.executor="ray"', "--set", 'run.address="auto"',
                 "--set", "run.gpus_per_point=0.5"]  # fmt: skip
    args = build_parser().parse_args(["sweep", "default", *ray_table, "--executor", "local"])
    _, run = _options(args)
    assert (run.executor, run.address, run.gpus_per_point) == ("local", None, 0.0)
    args = build_parser().parse_args(
        ["sweep", "default", "--executor", "local", "--address", "head:6379"]
    )
    _, run = _options(args)
    with pytest.raises(ValueError, match=r"Got address = 'head:6379' with executor = 'local'"):
        check_executor(run)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
@pytest.mark.parametrize("verb", ["sweep", "trace", "eval"])
def test_cuda_without_a_device_is_a_one_line_error(verb, tmp_path, capsys):
    out = tmp_path / "never"
    argv = {
        "sweep": ["sweep", os.fspath(DEFAULT_CONFIG), "--out", os.fspath(out)],
        "trace": ["trace", "digits"],
        "eval": ["eval", "digits"],
    }[verb]
    assert main([*argv, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"memsim {verb}: error: Device 'cuda': this machine has no CUDA GPU")
    assert not out.exists()


def test_bnn_study_refuses_gpu_packing_and_a_compute_dtype_before_writing(tmp_path, capsys):
    out = tmp_path / "never"
    for verb in (["run", "bnn/digits"], ["bnn", "digits"]):
        argv = [*verb, "--gpus-per-point", "0.5", "--out", os.fspath(out)]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err == (
            f"memsim {verb[0]}: error: The binarized-network study runs on CPUs in its own "
            "compute type; got --gpus-per-point."
        )
        assert not out.exists()


@pytest.mark.parametrize(
    ("device", "share", "match"),
    [
        ("cpu", 0.25, r"reserves GPUs for Ray workers that compute on the CPU"),
        ("cuda", 0.0, r"^No GPU share: .* needs a GPU share above 0 per worker .*--gpus-per-point"),
        ("cuda:1", 1.0, r"Device 'cuda:1': each Ray worker sees only the GPU it reserved"),
        ("mps", 0.0, r"Ray workers compute on cpu, cuda or auto\. Got device 'mps'"),
    ],
)
def test_a_device_ray_workers_cannot_use_is_refused_before_ray_starts(device, share, match):
    run = RunOptions(executor="ray", device=device, gpus_per_point=share)
    with pytest.raises(ValueError, match=match):
        check_executor(run)


@pytest.mark.parametrize(
    ("device", "share", "worker"),
    [("cpu", 0.0, "cpu"), ("cpu:0", 0.0, "cpu:0"), ("cuda", 0.25, "cuda"), ("cuda", 1.0, "cuda"),
     ("auto", 0.0, "cpu"), ("auto", 0.5, "cuda"), (" auto ", 1.0, "cuda")],
)  # fmt: skip
def test_devices_ray_workers_can_use_pass_and_name_the_workers_device(device, share, worker):
    """auto is resolved on the driver: CUDA only where each worker reserves a GPU share (Ray
    does not hide the GPUs from a worker that reserves none)."""
    check_ray_device(device, share)  # raises on refusal
    assert worker_device(device, share) == worker


def test_a_local_run_names_the_device_auto_resolves_to():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert check_executor(RunOptions(device="auto")) == expected
    assert check_executor(RunOptions(device="cpu")) == "cpu"


def test_an_engine_the_device_cannot_run_is_refused_before_anything_runs():
    check_engine("numba", "cpu")
    for engine in ("auto", "torch", "reference"):
        check_engine(engine, "cuda")  # a name check: this machine needs no GPU for it
    with pytest.raises(ValueError, match=r"^Engine 'numba' on device 'cuda': .*runs on cpu"):
        check_engine("numba", "cuda")
    with pytest.raises(ValueError, match=r"^Engine 'nope' on device 'cpu': engine: .*nope"):
        check_engine("nope", "cpu")
    for engine in ("auto", "torch", "reference"):  # float64 draws: MPS has no float64
        with pytest.raises(ValueError, match=r"on mps\. No engine draws on mps: it has no float64"):
            check_engine(engine, "mps")


@pytest.mark.parametrize(
    "verb", [["trace", "digits", "--images", "4"], ["eval", "digits", "--limit", "40", "--json"]]
)
def test_device_auto_runs_trace_and_eval_as_the_device_it_names(verb, capsys):
    assert main([*verb, "--device", "auto"]) == 0
    auto = capsys.readouterr().out
    here = "cuda" if torch.cuda.is_available() else "cpu"
    assert main([*verb, "--device", here]) == 0
    assert capsys.readouterr().out == auto


@pytest.mark.parametrize(
    ("device", "share"), [("cuda", 1.5), ("cuda", 2), ("auto", 3), ("cpu", 2.25)]
)
def test_a_gpu_share_above_one_gpu_is_refused(device, share):
    with pytest.raises(ValueError, match=rf"gpus_per_point = {share:g}: a point computes on one"):
        RunOptions(executor="ray", device=device, gpus_per_point=share)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _grpc_installed(monkeypatch, installed: bool) -> None:
    """Whether Ray Client's grpcio looks installed (the 'ray' extra brings it; [dev] does not)."""
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "grpc":
            return real("json") if installed else None  # any spec stands for "installed"
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_a_cluster_address_is_checked_in_seconds_not_retried_for_minutes(monkeypatch):
    from memsim.experiment import ray_executor

    _grpc_installed(monkeypatch, True)
    # The TCP step only: whether what answers speaks gRPC is tests/test_ray.py's.
    monkeypatch.setattr(ray_executor, "_not_grpc", lambda conn, timeout: "")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        check_address(f"127.0.0.1:{port}")  # something answers: accepted
        check_address(f"ray://127.0.0.1:{port}")
    for address in (None, "auto", "local"):
        check_address(address)  # no host to reach
    closed = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(ValueError, match=rf"Ray cluster address '{closed}': nothing answers"):
        check_address(closed)
    for bad in ("head-node", "host:port", ":6379", "host:0", "host:70000"):
        with pytest.raises(ValueError, match=rf"Ray cluster address '{bad}': expected auto"):
            check_address(bad)


def test_ray_client_without_grpcio_is_refused_naming_the_extra(monkeypatch):
    _grpc_installed(monkeypatch, False)
    with pytest.raises(
        ValueError, match=r"Ray Client \(ray://\) needs grpcio, which the 'ray' extra"
    ):
        check_address("ray://head:10001")
    check_address("auto")  # no client: no grpcio needed


def test_resources_that_cannot_place_every_worker_are_refused():
    check_resources({"CPU": 4.0, "GPU": 1.0}, 4, 0.25, "auto")  # fits exactly
    with pytest.raises(ValueError, match=r"--workers 5 needs 5 CPUs .* has 4: use --workers 4"):
        check_resources({"CPU": 4.0, "GPU": 1.0}, 5, 0.0, "auto")
    with pytest.raises(ValueError, match=r"needs 1\.25 GPUs, .* has 1: use fewer workers"):
        check_resources({"CPU": 8.0, "GPU": 1.0}, 5, 0.25, "head:6379")
    with pytest.raises(ValueError, match=r"local Ray instance has 0: use --device cpu"):
        check_resources({"CPU": 8.0}, 1, 0.25, None)


def test_exact_float32_turns_tf32_off_for_cuda():
    from memsim.compute import exact_float32

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        exact_float32()
        assert torch.backends.cudnn.allow_tf32 is False
        assert torch.backends.cuda.matmul.allow_tf32 is False
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_eval_takes_compute_dtype_and_flush_to_the_network(monkeypatch, capsys):
    """``memsim eval`` offers the sweep's two compute options; each reaches the network, and a
    compute dtype is refused for an integer format before anything loads."""
    from memsim.inference import network as network_module
    from memsim.inference.denormals import flushing

    built = []
    real_init = network_module.NoisyNetwork.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(network_module.NoisyNetwork, "__init__", spy)
    base = ["eval", "digits", "--limit", "40", "--p", "1e-3", "--json"]
    assert main([*base, "--format", "float16", "--compute-dtype", "float32"]) == 0
    assert built[-1].fmt == "float16" and built[-1].compute_dtype == torch.float32
    assert not built[-1].flush_denormals
    capsys.readouterr()
    assert main([*base, "--format", "float16", "--compute-dtype", "storage"]) == 0
    assert built[-1].compute_dtype == torch.float16
    capsys.readouterr()
    if torch.set_flush_denormal(False) and sys.platform == "linux":
        assert main([*base, "--flush-denormals"]) == 0
        assert built[-1].flush_denormals and not flushing()  # only while it computed
    n = len(built)
    assert main([*base, "--format", "int8", "--compute-dtype", "float64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(built) == n  # refused before a network was built
    assert err[-1].startswith("memsim eval: error: --compute-dtype float64 has no effect")
