"""Checkpoint files: round trip with metadata, wrong architecture, corrupted files."""

from __future__ import annotations

import pytest
import torch

from workloads import get_workload
from workloads.checkpoints import CheckpointError, load_checkpoint, load_state, save_checkpoint
from workloads.digits import DigitsCNN
from workloads.vgg import vgg


def test_round_trip_keeps_metadata_and_casts_back_to_float32(tmp_path):
    model = DigitsCNN()
    path = save_checkpoint(
        tmp_path / "sub" / "d.pt", model, arch="digits_cnn", test_acc=0.5, recipe="r"
    )
    payload = torch.load(path, weights_only=True)
    assert (
        payload["arch"] == "digits_cnn" and payload["test_acc"] == 0.5 and payload["recipe"] == "r"
    )
    assert payload["state_dict"]["features.0.weight"].dtype == torch.float16
    assert payload["state_dict"]["features.1.num_batches_tracked"].dtype == torch.int64
    loaded = get_workload("digits").load_model(path)
    assert loaded.features[0].weight.dtype == torch.float32
    assert torch.equal(loaded.features[0].weight, model.features[0].weight.half().float())


def test_checkpoint_of_another_architecture_names_the_architecture(tmp_path):
    path = save_checkpoint(tmp_path / "d.pt", DigitsCNN(), arch="digits_cnn")
    with pytest.raises(CheckpointError, match="architecture 'digits_cnn', not 'A'"):
        get_workload("vgg_A").load_model(path)


def test_bare_state_dict_of_another_network_lists_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save(DigitsCNN().state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        get_workload("vgg_A").load_model(path)
    message = str(err.value)
    assert str(path) in message
    assert "missing keys: features.8.weight" in message and "36 more" in message
    assert (
        "shape mismatches: features.0.weight (checkpoint (16, 1, 3, 3), model (64, 3, 3, 3))"
        in message
    )


def test_unexpected_keys_are_named(tmp_path):
    state = {**vgg("A").state_dict(), "fc.weight": torch.zeros(3)}
    with pytest.raises(CheckpointError, match="unexpected keys: fc.weight"):
        load_state(vgg("A"), state, source="mine")


def test_shape_mismatch_is_named(tmp_path):
    path = save_checkpoint(tmp_path / "a100.pt", vgg("A", num_classes=100), arch="A")
    with pytest.raises(
        CheckpointError, match=r"shape mismatches: classifier.weight \(checkpoint \(100, 512\)"
    ):
        get_workload("vgg_A").load_model(path)
    with pytest.raises(CheckpointError, match="missing keys"):
        load_state(vgg("A"), {}, source="empty")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_corrupted_file_names_the_file(tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"{path}.*corrupted") as info:
        load_checkpoint(path)
    message = str(info.value)
    # One line, and never torch's advice to load the file with weights_only=False.
    assert "\n" not in message and "weights_only" not in message


def test_truncated_checkpoint_and_missing_file(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", DigitsCNN(), arch="digits_cnn")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pt is corrupted"):
        get_workload("digits").load_model(truncated)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.pt")


def test_a_file_without_state_dict_is_rejected(tmp_path):
    path = tmp_path / "meta.pt"
    torch.save({"arch": "A", "weights": [1, 2]}, path)
    with pytest.raises(CheckpointError, match="holds no 'state_dict'"):
        load_checkpoint(path)


def test_vgg_without_any_checkpoint_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMSIM_SHARED", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="memsim train vgg_B"):
        get_workload("vgg_B").load_model()


class _Pickled:
    """Stands for code a checkpoint would run if loaded with weights_only=False."""


def test_a_checkpoint_that_pickles_code_is_refused_naming_the_global_not_torch_s_advice(tmp_path):
    path = tmp_path / "code.pt"
    torch.save({"state_dict": {}, "extra": _Pickled()}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message
    assert "Unsupported global" in message and "_Pickled" in message
    assert "weights_only" not in message  # no advice to run the file's code


def test_a_folder_given_as_a_checkpoint_is_named_as_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match=f"Checkpoint file {tmp_path} is a folder"):
        load_checkpoint(tmp_path)
