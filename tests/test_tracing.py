"""Write traces (memsim.trace.capture) and the `memsim trace` / `memsim eval` verbs."""

from __future__ import annotations

import argparse
import errno
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from memsim.cli import inference as inference_cli
from memsim.inference.int8 import quantize
from memsim.paths import check_output_file
from memsim.trace.capture import bit_statistics, trace_model
from memsim.trace.records import Trace


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 10),
    ).eval()


X = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _numpy_bit_stats(words: np.ndarray) -> tuple[np.ndarray, float]:
    """Independent oracle: unpack big-endian bytes into MSB-first bits."""
    width = words.dtype.itemsize * 8
    as_bytes = words.astype(words.dtype.newbyteorder(">")).view(np.uint8).reshape(-1, width // 8)
    bits = np.unpackbits(as_bytes, axis=1)
    return bits.mean(axis=0), float((words == 0).mean())


@pytest.mark.parametrize(
    "dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int8]
)
def test_bit_statistics_match_an_independent_count(dtype):
    x = torch.randn(5000, generator=torch.Generator().manual_seed(1)).relu()
    x = (x * 40).to(dtype) if dtype == torch.int8 else x.to(dtype)
    ones, zero = bit_statistics(x)
    width = torch.finfo(dtype).bits if dtype.is_floating_point else 8
    np_uint = {64: np.uint64, 32: np.uint32, 16: np.uint16, 8: np.uint8}[width]
    int_view = {64: torch.int64, 32: torch.int32, 16: torch.int16, 8: torch.int8}[width]
    expected_ones, expected_zero = _numpy_bit_stats(x.view(int_view).numpy().view(np_uint))
    assert np.allclose(ones, expected_ones, atol=1e-12)
    assert zero == pytest.approx(expected_zero)
    assert 0.3 < zero < 0.7  # ReLU outputs are zero-heavy


def test_trace_records_every_write_with_sizes_and_statistics(tmp_path):
    trace = trace_model(cnn(), X, "float32", workload_name="toy")
    assert [r.name for r in trace] == ["0", "1", "2", "3", "5"]
    assert [r.module_type for r in trace][:3] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert trace.records[0].shape == (4, 8, 8) and trace.records[0].numel == 256
    assert trace.records[0].ops == 256 * 27
    assert all(r.bits == 32 and r.format == "float32" and len(r.ones_fraction) == 32 for r in trace)
    relu = trace.records[2]
    assert relu.ones_fraction[0] == 0.0  # no negative ReLU outputs: the sign bit is never set
    assert relu.zero_fraction > 0.2
    assert trace.written_elements == 256 * 3 + 64 + 10
    assert trace.images_measured == 8
    loaded = Trace.load(trace.save(tmp_path / "t.json"))
    assert loaded == trace


def test_trace_options_fused_input_weights():
    trace = trace_model(
        cnn(), X, "float16", workload_name="toy", fused=True, noisy_input=True, include_weights=True
    )
    roles = [r.role for r in trace]
    assert roles[:6] == ["weight", "bias"] * 3  # conv, bn, linear parameters first
    acts = trace.activations()
    assert [r.module_type for r in acts] == [
        "input",
        "Conv2d+BatchNorm2d+ReLU",
        "MaxPool2d",
        "Linear",
    ]
    assert all(r.bits == 16 for r in trace)
    assert trace.meta["fused"] and trace.meta["noisy_input"]


def test_int8_trace_measures_the_codes():
    trace = trace_model(cnn(), X, "int8", workload_name="toy", include_weights=True)
    acts = trace.activations()
    assert all(r.bits == 8 and r.format == "int8" for r in acts)
    assert {r.format for r in trace if r.role == "bias"} == {"int32"}
    # the ReLU write's codes follow from the BN write's codes: relu(dequantized) re-quantized
    from memsim.inference.network import NoisyNetwork

    net = NoisyNetwork(cnn(), "int8", calibration=X)
    seen = {}
    net.observe(X, lambda wp, stored: seen.setdefault(wp.name, stored.clone()))
    q_bn, q_relu = net._storage.cal.activations[1], net._storage.cal.activations[2]
    bn_values = (seen["1"].float() - q_bn.zero_point) * q_bn.scale
    assert seen["2"].dtype == torch.int8
    assert torch.equal(seen["2"], quantize(bn_values.relu(), q_relu))
    assert acts[2].ones_fraction == bit_statistics(seen["2"])[0]


def test_vgg_a_trace_written_activations_per_image():
    from workloads import vgg

    trace = trace_model(
        vgg.vgg("A").eval(), torch.randn(2, 3, 32, 32), "float32", workload_name="vgg_A"
    )
    # convs at 32,16,8,8,4,4,2,2 px with 64,128,256,256,512,512,512,512 channels (×3 writes),
    # pools after conv 1, 2, 4, 6, 8; classifier 10.
    convs = [(64, 32), (128, 16), (256, 8), (256, 8), (512, 4), (512, 4), (512, 2), (512, 2)]
    pools = [(64, 16), (128, 8), (256, 4), (512, 2), (512, 1)]
    expected = sum(3 * c * s * s for c, s in convs) + sum(c * s * s for c, s in pools) + 10
    assert trace.written_elements == expected
    assert len(trace) == 3 * 8 + 5 + 1


def test_resnet18_can_be_traced():
    import torchvision

    model = torchvision.models.resnet18(num_classes=10).eval()
    trace = trace_model(model, torch.randn(2, 3, 32, 32), "bfloat16", workload_name="resnet18")
    assert len(trace) == 60 and all(r.bits == 16 for r in trace)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    inference_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_trace_and_eval_verbs_on_the_default_workload(tmp_path, capsys):
    import workloads.digits  # noqa: F401  (registers the default workload)

    out = tmp_path / "digits.json"
    assert _cli(["trace", "digits", "--images", "16", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "activation writes per image" in text and "Conv2d" in text
    assert len(Trace.load(out)) > 0
    assert (
        _cli(["eval", "digits", "--format", "bfloat16", "--p", "1e-3", "--limit", "50", "--json"])
        == 0
    )
    assert '"n_images": 50' in capsys.readouterr().out


def _bad_outputs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Output paths that cannot be written: ``{case: (path, text the error names)}``."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("in the way")
    folder = str(tmp_path / "folder")
    return {
        "existing folder": (folder, f"Output file {folder} is an existing folder"),
        "trailing separator": (
            f"{tmp_path / 'new'}{os.sep}",
            f"Output file {tmp_path / 'new'}{os.sep} ends in a path separator",
        ),
        "missing parent": (
            str(tmp_path / "nope" / "t.json"),
            f"Folder {tmp_path / 'nope'} of output file {tmp_path / 'nope' / 't.json'} "
            "does not exist",
        ),
        "parent is a file": (
            str(tmp_path / "file" / "t.json"),
            f"Folder {tmp_path / 'file'} of output file {tmp_path / 'file' / 't.json'} "
            "is not a folder",
        ),
    }


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


BAD_CASES = ["existing folder", "trailing separator", "missing parent", "parent is a file"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_check_output_file_refuses_unwritable_paths_and_creates_nothing(tmp_path, case):
    path, message = _bad_outputs(tmp_path)[case]
    before = _listing(tmp_path)
    with pytest.raises(ValueError, match="^" + re.escape(message)) as info:
        check_output_file(path)
    assert "\n" not in str(info.value)
    assert _listing(tmp_path) == before


def test_check_output_file_accepts_new_and_existing_files(tmp_path, monkeypatch):
    assert check_output_file(tmp_path / "t.json") == tmp_path / "t.json"
    (tmp_path / "t.json").write_text("old")
    assert check_output_file(str(tmp_path / "t.json")) == tmp_path / "t.json"  # replaced later
    monkeypatch.chdir(tmp_path)
    assert check_output_file("here.json") == Path("here.json")  # the current folder
    with pytest.raises(ValueError, match="Output file path is empty"):
        check_output_file("")
    assert _listing(tmp_path) == {"t.json"}


def _refuse_writes_in(folder: Path, monkeypatch) -> None:
    """Make ``folder`` unwritable (also for root, who writes into read-only folders anyway)."""
    folder.chmod(0o555)
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):
        if dir is not None and Path(dir) == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(folder))
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_unwritable_parent_is_a_clear_error(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    _refuse_writes_in(folder, monkeypatch)
    try:
        with pytest.raises(
            ValueError, match=f"Output folder {re.escape(str(folder))} is not writable"
        ):
            check_output_file(folder / "t.json")
        trace = trace_model(cnn(), X, "float32", workload_name="toy")
        with pytest.raises(ValueError, match="is not writable"):
            trace.save(folder / "t.json")
        assert _listing(folder) == set()
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("case", BAD_CASES)
def test_trace_save_refuses_a_bad_path_and_leaves_nothing(tmp_path, case):
    trace = trace_model(cnn(), X, "float32", workload_name="toy")
    path, message = _bad_outputs(tmp_path)[case]
    before = _listing(tmp_path)
    with pytest.raises(ValueError, match=re.escape(message)):
        trace.save(path)
    assert _listing(tmp_path) == before


def test_trace_save_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    trace = trace_model(cnn(), X, "float32", workload_name="toy")
    path = tmp_path / "t.json"
    assert trace.save(path) == path and trace.save(path) == path  # an existing file is replaced
    assert _listing(tmp_path) == {"t.json"}

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        trace.save(tmp_path / "other.json")
    assert _listing(tmp_path) == {"t.json"}  # no temporary file left behind
    assert Trace.load(path) == trace  # the earlier file is intact


@pytest.mark.parametrize("case", ["existing folder", "trailing separator", "missing parent"])
def test_trace_verb_refuses_a_bad_out_before_tracing(tmp_path, capsys, monkeypatch, case):
    import memsim.trace.capture
    from memsim.cli.main import main

    def never(*args, **kwargs):
        raise AssertionError("traced before the output path was checked")

    monkeypatch.setattr(memsim.trace.capture, "trace_model", never)
    path, message = _bad_outputs(tmp_path)[case]
    before = _listing(tmp_path)
    assert main(["trace", "digits", "--images", "4", "--out", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memsim trace: error: " + message) and err.count("\n") == 1
    assert _listing(tmp_path) == before  # no trace, no .tmp, no folder
