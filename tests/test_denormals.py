"""Subnormal floats flushed to zero (``sweep.flush_denormals``): on every thread torch computes
on, only inside the block, refused where it cannot hold, part of an experiment's identity."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from memsim.cli.bnn import bnn_executor
from memsim.cli.experiment import _options
from memsim.cli.main import build_parser
from memsim.config import ConfigError
from memsim.experiment.run import load_experiment
from memsim.inference.denormals import check_flush_device, denormals_flushed, flushing
from memsim.inference.network import NoisyNetwork

SUBNORMAL = 1e-40  # float32 subnormals lie below 1.18e-38
#: torch sets the modes on x86 only (elsewhere it reports False), and memsim reaches torch's
#: threads on Linux only: elsewhere the option is refused.
HAS_MODES = torch.set_flush_denormal(False) and sys.platform == "linux"
needs_modes = pytest.mark.skipif(not HAS_MODES, reason="no flush-to-zero mode torch can set")


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@needs_modes
def test_flush_reaches_every_thread_and_ends_with_the_block(two_threads):
    # 4M elements: torch splits the multiply over both threads; a thread left out would keep
    # its half of the subnormals.
    x = torch.full((1 << 22,), SUBNORMAL)
    assert not flushing() and bool(((x * 1.0) != 0).all())
    with denormals_flushed():
        assert flushing()
        assert int(((x * 1.0) != 0).sum()) == 0  # inputs read as 0 on every thread
        assert int((torch.full((1 << 22,), 1e-30) * 1e-10 != 0).sum()) == 0  # results too
    assert not flushing()
    assert bool(((x * 1.0) == x).all())  # IEEE again on every thread


#: Run in a fresh interpreter: ``memsim.jit`` or torch loaded first, Numba's pool started before
#: the flush (OpenMP threads keep the mode they had; threads started later copy their parent's).
_ONE_RUNTIME = """
import sys
if sys.argv[1] == "jit":
    import memsim.jit
import numba, numpy as np, torch
import memsim.jit
from memsim.inference.denormals import denormals_flushed
numba.set_num_threads(2)
torch.set_num_threads(2)

@numba.njit(parallel=True)
def probe(tiny, zero, tid):
    for i in numba.prange(tiny.size):
        zero[i] = tiny[i] * np.float32(1.5) == 0.0
        tid[i] = numba.get_thread_id()

tiny = np.full(1 << 16, 1e-40, np.float32)
zero, tid = np.zeros(tiny.size, np.bool_), np.zeros(tiny.size, np.int64)
probe(tiny, zero, tid)
assert not zero.any() and np.unique(tid).size == 2, "the pool did not start on two threads"
with denormals_flushed():
    probe(tiny, zero, tid)
print(int(zero.sum()), tiny.size)
"""


@needs_modes
@pytest.mark.parametrize("first", ["jit", "torch"])
def test_numba_kernels_run_on_the_runtime_torch_computes_on(first):
    # Torch ships libgomp.so.1 and Numba's omppool asks for libgomp.so.1.0.0, so both may be
    # mapped; the flush reaches torch's runtime only. Numba's kernels share it whichever loads
    # first (its calls bind to torch's copy, or torch reuses the one already loaded): one pool,
    # so every Numba thread flushes too. A second runtime would leave its threads unflushed.
    maps = Path("/proc/self/maps").read_text()
    if "libgomp" not in maps:  # torch built on another runtime (LLVM's, Intel's): not one pool
        pytest.skip("torch does not compute on GNU OpenMP here, which Numba's omppool links")
    done = subprocess.run(
        [sys.executable, "-c", _ONE_RUNTIME, first],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NUMBA_NUM_THREADS": "2"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    flushed, total = map(int, done.stdout.split())
    assert flushed == total


def test_flush_off_changes_nothing():
    with denormals_flushed(False):
        assert not flushing()
        assert float(torch.tensor([SUBNORMAL]) * 1.0) != 0.0


@needs_modes
def test_a_network_computes_with_subnormals_flushed_only_when_asked(two_threads):
    model = nn.Sequential(nn.Linear(1, 1, bias=False))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    x = torch.full((8, 1), SUBNORMAL)
    kept = NoisyNetwork(model, "float32").logits(x, None)
    flushed = NoisyNetwork(model, "float32", flush_denormals=True).logits(x, None)
    assert bool((kept != 0).all()) and bool((flushed == 0).all())
    assert not flushing()  # the network put the mode back


def test_flushing_is_refused_off_the_cpu():
    with pytest.raises(ValueError, match=r"sweep\.flush_denormals = true .*'cuda'"):
        check_flush_device("cuda")
    if HAS_MODES:
        check_flush_device("cpu")
    else:
        with pytest.raises(ValueError, match=r"sweep\.flush_denormals = true"):
            check_flush_device("cpu")
    with pytest.raises(TypeError, match="flush_denormals must be a bool"):
        NoisyNetwork(nn.Linear(1, 1), "float32", flush_denormals="yes")  # type: ignore[arg-type]


def test_flush_denormals_is_part_of_the_identity():
    plain, _ = load_experiment()
    flushed, _ = load_experiment(overrides=["sweep.flush_denormals=true"])
    assert flushed.sweep.flush_denormals and not plain.sweep.flush_denormals
    assert flushed.digest() != plain.digest()
    with pytest.raises(ConfigError, match="flush_denormals"):
        load_experiment(overrides=['sweep.flush_denormals="maybe"'])


def test_cli_flag_sets_the_key_and_the_bnn_study_refuses_it():
    args = build_parser().parse_args(["sweep", "default", "--flush-denormals"])
    config, _ = _options(args)
    assert config.sweep.flush_denormals
    config, _ = _options(build_parser().parse_args(["sweep", "default"]))
    assert not config.sweep.flush_denormals
    bnn = build_parser().parse_args(["bnn", "configs/bnn/digits.toml", "--flush-denormals"])
    with pytest.raises(ValueError, match="--flush-denormals"):
        bnn_executor(bnn)


@pytest.mark.parametrize(
    ("overrides", "run", "prone"),
    [
        ([], {}, "float32"),  # the default: float32 and int8 stored
        (['formats=["float16", "bfloat16", "float64"]'], {}, "bfloat16, float64"),
        (['formats=["bfloat16", "float64"]', 'sweep.compute_dtype="float32"'], {}, "bfloat16"),
        (['formats=["float32"]', 'sweep.compute_dtype="float64"'], {}, None),  # normal there
        (['formats=["int8", "float16"]'], {}, None),  # dequantized; normal in float32
        (["sweep.flush_denormals=true"], {}, None),
        ([], {"executor": "ray"}, None),  # the workers' CPUs are not this one
    ],
)
def test_a_run_is_told_when_this_cpu_is_slow_on_subnormals(monkeypatch, overrides, run, prone):
    from memsim.experiment import launch
    from memsim.experiment.config import RunOptions
    from memsim.inference import denormals

    config, options = load_experiment(overrides=overrides)
    options = RunOptions(**{**options.__dict__, "device": "cpu", **run})
    monkeypatch.setattr(denormals, "subnormal_slowdown", lambda: 48.0)
    hint = launch.subnormal_hint(config, options)
    if prone is None:
        assert hint is None
    else:
        assert hint is not None and "48x slower" in hint and "--flush-denormals" in hint
        assert f"flipped zeros of {prone} make them" in hint
    monkeypatch.setattr(denormals, "subnormal_slowdown", lambda: 1.1)  # a CPU that does not care
    assert launch.subnormal_hint(config, options) is None
