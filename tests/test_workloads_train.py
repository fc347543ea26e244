"""Training: a short run saves a loadable checkpoint with metadata; noisy training; the CLI."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from memsim.cli.main import main
from workloads import get_workload
from workloads.train import TrainConfig, train, train_model

QUICK = dict(epochs=1, batch_size=32, lr=0.05, limit=256, autocast=False)


def test_short_run_saves_a_checkpoint_with_metadata(tmp_path):
    workload = get_workload("digits")
    result = train(
        workload, TrainConfig(**QUICK), out=tmp_path / "d.pt", device="cpu", progress=False
    )
    payload = torch.load(result.checkpoint, weights_only=True)
    assert payload["arch"] == "digits_cnn" and payload["workload"] == "digits"
    assert payload["test_acc"] == result.test_acc and payload["test_samples"] == 360
    assert "SGD nesterov" in payload["recipe"] and payload["train_config"]["limit"] == 256
    assert result.test_acc > 0.3  # one epoch on 256 images already learns (chance is 0.1)
    # the stored (float16) weights give exactly the accuracy the checkpoint claims
    x, y = workload.dataset("test")
    model = workload.load_model(result.checkpoint)
    with torch.no_grad():
        correct = int((model(x).argmax(1) == y).sum())
    assert correct / len(y) == result.test_acc


def test_bf16_autocast_and_cosine_schedule_run():
    config = TrainConfig(**{**QUICK, "autocast": True}, schedule="cosine")
    model, skipped = train_model(get_workload("digits"), config, device="cpu", progress=False)
    assert skipped == 0 and all(torch.isfinite(p).all() for p in model.parameters())


def test_noisy_training_flips_activations_reproducibly():
    workload = get_workload("digits")
    clean, _ = train_model(workload, TrainConfig(**QUICK), progress=False)
    noisy_cfg = TrainConfig(**QUICK, noise_p=1e-2, noise_bits="mantissa")
    noisy, skipped = train_model(workload, noisy_cfg, progress=False)
    again, _ = train_model(workload, noisy_cfg, progress=False)
    w = "features.0.weight"
    assert skipped == 0  # mantissa flips never make a value non-finite
    assert not torch.equal(clean.state_dict()[w], noisy.state_dict()[w])
    assert torch.equal(noisy.state_dict()[w], again.state_dict()[w])


def test_noisy_training_skips_non_finite_batches():
    config = TrainConfig(**QUICK, noise_p=0.05, noise_bits="exponent")
    model, skipped = train_model(get_workload("digits"), config, progress=False)
    assert skipped > 0
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("epochs", 0, "'epochs' parameter"),
        ("schedule", "step", "'schedule' parameter"),
        ("noise_p", 2.0, "'noise_p'"),
    ],
)
def test_bad_recipe_values_are_clear_errors(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


def test_cli_train_writes_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "cli.pt"
    argv = [
        "train",
        "digits",
        "--epochs",
        "1",
        "--limit",
        "128",
        "--batch-size",
        "32",
        "--no-progress",
    ]
    assert main([*argv, "--out", str(out)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert torch.load(out, weights_only=True)["train_config"]["epochs"] == 1
    assert main(["train", "no_such_workload"]) == 2
    assert "Known workloads" in capsys.readouterr().err


@pytest.mark.cifar
def test_vgg_A_trains_briefly_on_a_cifar_subset(tmp_path, cifar_root):
    workload = get_workload("vgg_A", data_root=cifar_root.parent)
    config = TrainConfig(epochs=1, batch_size=32, limit=64)
    result = train(
        workload, config, out=tmp_path / "a.pt", device="cpu", progress=False, eval_limit=100
    )
    payload = torch.load(result.checkpoint, weights_only=True)
    assert payload["arch"] == "A" and payload["cfg"][0] == 64 and len(payload["mean"]) == 3
    assert payload["data"].startswith("CIFAR-10 from")
    assert workload.load_model(result.checkpoint).classifier.weight.dtype == torch.float32


def test_training_fixes_cublas_workspace_for_deterministic_cuda(monkeypatch):
    """cuBLAS is deterministic only with a fixed workspace; one the user set is kept."""
    from workloads.train import _deterministic

    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")  # recorded: restored after the test
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    with _deterministic():
        assert torch.are_deterministic_algorithms_enabled()
    import os

    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    with _deterministic():
        pass
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def _bad_outs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Checkpoint paths that cannot be written: ``{case: (path, text the error names)}``."""
    (tmp_path / "t1dir").mkdir()
    (tmp_path / "file").write_text("in the way")
    return {
        "existing folder": (str(tmp_path / "t1dir"), f"{tmp_path / 't1dir'} is an existing folder"),
        "trailing separator": (
            f"{tmp_path / 'new'}{os.sep}",
            f"{tmp_path / 'new'}{os.sep} ends in a path separator",
        ),
        "parent is a file": (str(tmp_path / "file" / "d.pt"), f"{tmp_path / 'file'} of output"),
        "state is a folder": (str(tmp_path / "s.pt"), f"{tmp_path / 's.pt.train-state'} is an"),
    }


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any training step (or data loading for it) runs."""
    import workloads.train as train_module

    calls = []

    def never(*args, **kwargs):
        calls.append(args)
        raise AssertionError("trained before the output path was checked")

    monkeypatch.setattr(train_module, "train_model", never)
    return calls


BAD_OUTS = ["existing folder", "trailing separator", "parent is a file"]


def test_train_makes_a_missing_folder_for_its_checkpoint(tmp_path, capsys):
    """As the configs' comments run it: `memsim train W --out checkpoints/W.pt` in a fresh
    checkout, where checkpoints/ does not exist yet."""
    out = tmp_path / "checkpoints" / "deeper" / "d.pt"
    argv = ["train", "digits", "--epochs", "1", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    assert out.is_file() and not Path(f"{out}.train-state").exists()


@pytest.mark.parametrize("case", BAD_OUTS)
def test_train_refuses_a_bad_out_before_training(tmp_path, no_training, case):
    path, message = _bad_outs(tmp_path)[case]
    before = _listing(tmp_path)
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        train(get_workload("digits"), TrainConfig(**QUICK), out=path, progress=False)
    assert "\n" not in str(info.value)
    assert no_training == []
    assert _listing(tmp_path) == before  # no folder, no .train-state, no .tmp


def test_train_model_refuses_a_bad_state_path_before_loading_data(tmp_path):
    class NoData:
        name = "no_data"

        def dataset(self, *args, **kwargs):
            raise AssertionError("data loaded before the state path was checked")

    (tmp_path / "s.pt.train-state").mkdir()
    with pytest.raises(ValueError, match="s.pt.train-state is an existing folder"):
        train_model(NoData(), TrainConfig(**QUICK), state_path=tmp_path / "s.pt.train-state")
    assert _listing(tmp_path) == {"s.pt.train-state"}


@pytest.mark.parametrize("case", [*BAD_OUTS, "state is a folder"])
def test_cli_train_refuses_a_bad_out_before_training(tmp_path, capsys, no_training, case):
    path, message = _bad_outs(tmp_path)[case]
    if case == "state is a folder":
        (tmp_path / "s.pt.train-state").mkdir()
    before = _listing(tmp_path)
    argv = ["train", "digits", "--epochs", "1", "--no-progress", "--out", path]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("memsim train: error: ") and err.count("\n") == 1
    assert message in err
    assert no_training == []
    assert _listing(tmp_path) == before  # no folder, no .train-state, no .tmp
