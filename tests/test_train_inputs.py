"""Training refuses bad input before it trains or writes anything: sample counts beyond a split
(``--limit``, ``--eval-limit``), counts below one, and noisy-training formats and bit masks that
do not exist, from the command line and from :func:`workloads.train.train` alike."""

from __future__ import annotations

import math

import pytest
import torch

from memsim.cli.main import main
from workloads import get_workload
from workloads.train import TrainConfig, train

QUICK = dict(epochs=1, batch_size=32, lr=0.05, limit=64, autocast=False)
TRAIN = ["train", "digits", "--epochs", "1", "--batch-size", "32", "--no-progress"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--limit", "100000"],
         ["--limit: 100000 images asked for", "'train' split of workload digits holds 1,437"]),
        (["--limit", "1438"], ["--limit: 1438 images", "holds 1,437"]),
        (["--eval-limit", "100000"],
         ["--eval-limit: 100000 images asked for", "'test' split of workload digits holds 360"]),
        (["--noise-format", "foo"], ["error: --noise-format must be one of", "Got 'foo'"]),
        (["--noise-format", "int8"], ["error: --noise-format must be one of", "'int8'"]),
        (["--noise-bits", "bogus"],
         ["error: --noise-bits must name bits of float32", "'bogus'", "unknown field"]),
        (["--noise-p", "0.01", "--noise-bits", "first_noisy:99"],
         ["error: --noise-bits must name bits", "'first_noisy:99'"]),
        (["--noise-p", "1.5"], ["error: --noise-p must be a float in [0, 1]. Got 1.5."]),
        (["--noise-p10", "-0.1"], ["error: --noise-p10 must be a float in [0, 1]. Got -0.1."]),
        (["--epochs", "0"], ["error: --epochs must be an int in [1, 100000]. Got 0."]),
        (["--batch-size", "0"], ["error: --batch-size must be an int in [1, 65536]. Got 0."]),
        (["--lr", "0"], ["error: --lr must be a float in (0.0, inf). Got 0.0."]),
        (["--weight-decay", "-1"], ["error: --weight-decay must be a float in [0.0, inf)."]),
    ],
)  # fmt: skip
def test_cli_train_refuses_bad_input_before_training(tmp_path, capsys, extra, expected):
    """Counts beyond a split were cut to it silently (the recipe then claimed them), and a
    bad noise format or mask failed only once training began, or never (without --noise-p)."""
    out = tmp_path / "d.pt"
    assert main([*TRAIN, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("memsim train: error: ")
    for text in expected:
        assert text in err[0]
    assert "TrainConfig" not in err[0] and "parameter" not in err[0]  # the flag, not the field
    assert list(tmp_path.iterdir()) == []  # no checkpoint, no .train-state


def test_cli_train_names_every_recipe_flag_by_its_flag():
    """TrainConfig's checks stay the only checks; the CLI only renames the field to its flag."""
    from memsim.cli.main import build_parser
    from memsim.cli.train import _FLAGS, flag_message

    (sub,) = [a for a in build_parser()._actions if hasattr(a, "choices") and a.choices]
    flags = {f: a.dest for a in sub.choices["train"]._actions for f in a.option_strings}
    for field, flag in _FLAGS.items():
        assert flags[flag] == field, (field, flag)  # every flag named exists and sets the field
        msg = f"The '{field}' parameter of TrainConfig must be X. Got 'y'."
        assert flag_message(msg) == f"{flag} must be X. Got 'y'."
    # A field no flag sets (the workload's own recipe) keeps its name.
    own = "The 'momentum' parameter of TrainConfig must be a float in [0.0, 1.0). Got 1.0."
    assert flag_message(own) == own
    assert (
        flag_message("The 'limit' parameter must be a positive int")
        == "--limit must be a positive int"
    )


@pytest.mark.parametrize("option", ["--limit", "--eval-limit"])
@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_cli_train_counts_below_one_are_argument_errors(tmp_path, capsys, option, value):
    """``--eval-limit 0`` failed after the epoch ran, without naming the option, leaving a
    ``.train-state`` file behind."""
    out = tmp_path / "d.pt"
    with pytest.raises(SystemExit) as info:
        main([*TRAIN, option, value, "--out", str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"argument {option}: must be an int in [1, " in err[0]
    assert f"Got '{value}'" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_train_accepts_counts_up_to_the_split(tmp_path, capsys):
    out = tmp_path / "d.pt"
    argv = [*TRAIN, "--limit", "1437", "--eval-limit", "360", "--no-augment"]
    assert main([*argv, "--out", str(out), "--noise-bits", "mantissa"]) == 0
    assert out.is_file() and "test accuracy" in capsys.readouterr().out


def _printed_accuracy(text: str) -> tuple[float, float, float, int, int]:
    import re

    found = re.search(
        r"test accuracy (\S+) \[(\S+), (\S+)\] \((\d+)/(\d+); 95 % Wilson interval over the "
        r"images\); checkpoint written to ",
        text,
    )
    assert found, text
    acc, low, high, correct, n = found.groups()
    return float(acc), float(low), float(high), int(correct), int(n)


@pytest.mark.parametrize(("eval_limit", "images"), [(None, 360), (100, 100)])
def test_cli_train_prints_the_accuracy_with_its_wilson_interval(
    tmp_path, capsys, eval_limit, images
):
    """``memsim train`` printed a bare "test accuracy 0.9889"; ``memsim eval`` gives the 95 %
    Wilson interval over the images with the count it rests on, and so does train now: over
    ``--eval-limit`` images, else the whole test split."""
    from memsim.fit import wilson_interval

    extra = [] if eval_limit is None else ["--eval-limit", str(eval_limit)]
    argv = [*TRAIN, "--limit", "64", "--no-augment", *extra, "--out", str(tmp_path / "d.pt")]
    assert main(argv) == 0
    acc, low, high, correct, n = _printed_accuracy(capsys.readouterr().out)
    assert n == images and math.isclose(acc, correct / n, abs_tol=5e-5)
    expected = [float(v) for v in wilson_interval(correct, n)]
    assert [low, high] == pytest.approx(expected, abs=5e-5)
    assert low < acc < high or acc in (0.0, 1.0)
    stored = torch.load(tmp_path / "d.pt", weights_only=True)
    assert stored["test_samples"] == n and round(stored["test_acc"] * n) == correct


def test_train_reports_the_images_of_a_split_of_unknown_size_loading_it_once(tmp_path, monkeypatch):
    """The accuracy line's count comes from what ``train`` measured: a workload that cannot
    tell its split's size is not loaded a second time just to count it."""
    from torch import nn

    import workloads.train as train_module
    from memsim.cli.train import _accuracy_line
    from workloads.generic import wrap

    data = _SizeUnknown()
    data.input_shape = (6,)  # with num_classes below: no loads for the checkpoint's metadata
    loads = []
    dataset = data.dataset
    data.dataset = lambda split, limit=None: loads.append(split) or dataset(split, limit)
    model = nn.Sequential(nn.Linear(6, 2))
    workload = wrap(model, data, name="size_unknown", num_classes=2)
    assert workload.split_size("test") is None
    monkeypatch.setattr(train_module, "train_model", lambda *a, **k: (model, 0))
    result = train(workload, TrainConfig(**QUICK), out=tmp_path / "m.pt")
    assert result.test_images == 40 and loads.count("test") == 1
    line = _accuracy_line(0.75, result.test_images)  # 30 of the 40 samples
    assert line.startswith("test accuracy 0.7500 [") and "(30/40; 95 % Wilson" in line
    limited = train(workload, TrainConfig(**QUICK), out=tmp_path / "n.pt", eval_limit=4)
    assert limited.test_images == 4


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(limit=100000), r"^100000 images asked for, but the 'train' split of workload digits"),
        (dict(eval_limit=100000), r"^100000 images asked for, but the 'test' split"),
        (dict(eval_limit=0), r"'eval_limit' parameter of train must be an int in \[1, .*Got 0\."),
        (dict(eval_limit=-3), r"'eval_limit' parameter of train .*Got -3\."),
    ],
)  # fmt: skip
def test_train_refuses_counts_before_training(tmp_path, change, match):
    """The Python entry point checks what the CLI checks, before the first epoch."""
    limit = change.pop("limit", QUICK["limit"])
    with pytest.raises(ValueError, match=match) as info:
        train(
            get_workload("digits"),
            TrainConfig(**{**QUICK, "limit": limit}),
            out=tmp_path / "d.pt",
            progress=False,
            **change,
        )
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no .train-state: refused before the epoch


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(noise_format="foo"),
         r"^The 'noise_format' parameter of TrainConfig must be one of \['float64', .*Got 'foo'\.$"),
        (dict(noise_format="int8"), r"'noise_format' parameter of TrainConfig .*Got 'int8'\.$"),
        (dict(noise_bits="bogus"),
         r"^The 'noise_bits' parameter of TrainConfig must name bits of float32 .*"
         r"unknown field 'bogus'.* Got 'bogus'\.$"),
        (dict(noise_format="float16", noise_bits="first_noisy:17"),
         r"'noise_bits' parameter of TrainConfig must name bits of float16 .*Got 'first_noisy:17'"),
        (dict(noise_p=0.01, noise_bits="first_noisy:x"), r"'noise_bits' .*Got 'first_noisy:x'"),
    ],
)  # fmt: skip
def test_train_config_refuses_unknown_noise_formats_and_bits(change, match):
    """Checked whether or not noise is on: an invalid value is an error even where unused."""
    with pytest.raises(ValueError, match=match) as info:
        TrainConfig(**change)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "change",
    [
        dict(noise_bits="mantissa"),
        dict(noise_bits="all"),
        dict(noise_bits="first_noisy:9"),
        dict(noise_format="bfloat16", noise_bits="exponent"),
        dict(noise_format="float8_e4m3", noise_bits=None),
    ],
)
def test_train_config_accepts_real_noise_formats_and_bits(change):
    assert TrainConfig(**change).noise_bits == change["noise_bits"]


class _SizeUnknown:
    """Data whose split sizes are known only once loaded (no ``split_size``)."""

    def dataset(self, split, limit=None):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(40, 6, generator=gen)
        y = (x[:, 0] > 0).long()
        return (x[:limit], y[:limit]) if limit is not None else (x, y)


def test_an_eval_limit_beyond_a_split_of_unknown_size_is_refused_before_training(
    tmp_path, monkeypatch
):
    """The test images were loaded after training: a count beyond a split whose size the
    workload cannot tell in advance failed after every epoch had run."""
    from torch import nn

    import workloads.train as train_module
    from workloads.generic import wrap

    workload = wrap(nn.Sequential(nn.Linear(6, 2)), _SizeUnknown(), name="size_unknown")
    trained = []
    monkeypatch.setattr(train_module, "train_model", lambda *a, **k: trained.append(1))
    with pytest.raises(ValueError, match=r"^'eval_limit': 1000 images asked for, .* holds 40\.$"):
        train(workload, TrainConfig(**QUICK), out=tmp_path / "m.pt", eval_limit=1000)
    assert trained == [] and list(tmp_path.iterdir()) == []
