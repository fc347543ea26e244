"""The command line behaves one way: shared options, logging, version, light --help, training.

One set of options (``memsim/cli/options.py``) with one name, meaning and default on every verb;
``--help`` loads neither torch nor scipy; ``python -m memsim`` and ``--version`` work; ``train``
saves generic workloads and resumes an interrupted training.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import pytest
import torch
from torch import nn

import memsim
from memsim.cli import options
from memsim.cli.main import build_parser, main
from workloads import WORKLOADS, get_workload
from workloads.generic import register
from workloads.train import TrainConfig, train

COMMON = ("--debug", "--no-progress", "--quiet", "--verbose")


def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: a for a in parser._actions for flag in a.option_strings}


def test_every_verb_has_the_common_options():
    for verb, parser in _verbs().items():
        flags = _flags(parser)
        missing = [f for f in (*COMMON, "-q", "-v") if f not in flags]
        assert not missing, f"memsim {verb} lacks {missing}"


def test_shared_options_have_one_meaning_and_default_everywhere():
    for verb, parser in _verbs().items():
        flags = _flags(parser)
        if "--device" in flags and flags["--device"].help != argparse.SUPPRESS:
            assert "torch device" in flags["--device"].help, verb
            assert flags["--device"].default is None  # resolved to options.DEFAULT_DEVICE
        for name in ("--p", "--p01"):
            if name in flags:
                assert flags[name].dest == "p", verb
        assert "--noise-p01" not in flags
    assert _flags(_verbs()["eval"])["--p"] is not None
    assert _flags(_verbs()["flip-demo"])["--p"].dest == "p"
    assert options.torch_device(argparse.Namespace(device=None)) == "cpu"


def test_memory_names_the_rram_preset_rram_and_keeps_device_as_deprecated_alias():
    parser = _verbs()["memory"]
    assert parser.parse_args(["t.json", "--rram", "low_energy"]).rram == "low_energy"
    assert parser.parse_args(["t.json", "--device", "low_energy"]).rram == "low_energy"


def test_bits_take_lists_as_the_readme_says():
    args = _verbs()["eval"].parse_args(["digits", "--bits", "sign,exponent"])
    assert args.bits == ["sign", "exponent"]
    assert (
        options.bits_list("all") is None and options.bits_list("first_noisy:9") == "first_noisy:9"
    )
    from memsim.formats import get_format, resolve_bits

    mask = resolve_bits(get_format("float32"), args.bits)
    assert mask.sum() == 9  # one sign bit and eight exponent bits


@pytest.mark.parametrize("bits", [",", "+", " , + "])
def test_bits_naming_no_field_are_a_one_line_error(bits, capsys):
    from memsim.cli.main import main

    with pytest.raises(SystemExit) as info:  # argparse's own exit
        main(["flip-demo", "--bits", bits, "--p", "0.1"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("memsim flip-demo: error: argument --bits: ")
    assert "names no bit field" in err


def test_help_choices_match_the_library():
    from memsim.cli import experiment as experiment_verb
    from memsim.cli import inference, options
    from memsim.cli import train as train_verb
    from memsim.experiment import config
    from memsim.inference.graph import GRANULARITIES
    from memsim.inference.network import INFERENCE_FORMATS
    from workloads.train import OPTIMIZERS, SCHEDULES

    assert options.EXECUTORS == config.EXECUTORS
    assert options.COMPUTE_DTYPES == config.COMPUTE_DTYPES
    assert experiment_verb.MAX_BOOTSTRAP == config.MAX_BOOTSTRAP
    assert inference.GRANULARITIES == GRANULARITIES
    assert inference.FORMATS == INFERENCE_FORMATS
    assert train_verb._SCHEDULES == SCHEDULES and train_verb._OPTIMIZERS == OPTIMIZERS


def test_train_help_defaults_match_the_recipe():
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    parser = _verbs()["train"]
    assert parser.get_default("seed") == defaults["seed"]
    text = parser.format_help()
    for dest in ("epochs", "batch_size", "lr", "weight_decay", "schedule", "optimizer"):
        assert parser.get_default(dest) is None, dest  # None: the workload's recipe decides
        assert f"else {defaults[dest]})" in " ".join(text.split()), dest


def test_train_starts_from_the_workload_recipe_and_options_replace_fields():
    from memsim.cli.train import recipe_from_args
    from workloads import get_workload
    from workloads.vit import RECIPE

    parser = _verbs()["train"]
    vit = get_workload("vit_small")
    assert recipe_from_args(vit, parser.parse_args(["vit_small"])) == RECIPE
    changed = recipe_from_args(
        vit, parser.parse_args(["vit_small", "--epochs", "2", "--no-augment"])
    )
    assert (changed.epochs, changed.augment, changed.optimizer) == (2, False, "adamw")
    from workloads.digits import RECIPE as DIGITS

    assert recipe_from_args(get_workload("digits"), parser.parse_args(["digits"])) == DIGITS
    generic = recipe_from_args(get_workload("vgg_A"), parser.parse_args(["vgg_A"]))
    assert generic == TrainConfig()


def test_version_and_python_dash_m(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"memsim {memsim.__version__}"
    proc = subprocess.run(
        [sys.executable, "-m", "memsim", "--version"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and memsim.__version__ in proc.stdout


def test_help_imports_neither_torch_nor_scipy():
    code = (
        "import sys\n"
        "from memsim.cli.main import main\n"
        "for argv in (['--help'], ['run', '--help'], ['device', '--help'], ['flip-demo', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'scipy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_logging_is_configured_by_the_cli_only():
    import logging

    import memsim.experiment.run  # noqa: F401  (libraries add no handlers)

    assert not [
        h
        for h in logging.getLogger("memsim").handlers
        if type(h).__module__ != "memsim.cli.options"
    ]
    args = argparse.Namespace(quiet=True, verbose=0)
    options.configure_logging(args)
    assert logging.getLogger("memsim").level == logging.WARNING
    options.configure_logging(argparse.Namespace(quiet=False, verbose=1))
    assert logging.getLogger("memsim").level == logging.DEBUG


# ------------------------------------------------------------------------------------- training

QUICK = dict(epochs=2, batch_size=32, lr=0.05, autocast=False, augment=False)


@pytest.fixture
def generic_workload():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=gen)
    y = (x[:, 0] > 0).long()
    register(
        "generic_train_test",
        lambda: nn.Sequential(nn.Linear(6, 2)),
        {"train": (x, y), "test": (x, y)},
    )
    yield get_workload("generic_train_test")
    WORKLOADS._items.pop("generic_train_test", None)


def test_train_saves_a_generic_workload_without_normalisation(generic_workload, tmp_path):
    assert getattr(generic_workload, "mean", None) is None
    result = train(generic_workload, TrainConfig(**QUICK), out=tmp_path / "g.pt", progress=False)
    payload = torch.load(result.checkpoint, weights_only=True)
    assert payload["mean"] is None and payload["workload"] == "generic_train_test"
    assert not (tmp_path / "g.pt.train-state").exists()  # done: nothing left to resume


def test_interrupted_training_resumes_from_the_last_epoch(generic_workload, tmp_path, monkeypatch):
    config = TrainConfig(**QUICK)
    whole = train(generic_workload, config, out=tmp_path / "whole.pt", progress=False)

    import workloads.train as train_module

    real_save = train_module._save_train_state
    calls = []

    def save_then_die(path, state):
        real_save(path, state)
        calls.append(state["epoch"])
        raise KeyboardInterrupt  # interrupted right after the first epoch's state is saved

    monkeypatch.setattr(train_module, "_save_train_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(generic_workload, config, out=tmp_path / "cut.pt", progress=False)
    assert calls == [1] and (tmp_path / "cut.pt.train-state").exists()
    monkeypatch.setattr(train_module, "_save_train_state", real_save)
    resumed = train(generic_workload, config, out=tmp_path / "cut.pt", progress=False)
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)  # the same weights as an uninterrupted run


def test_argument_errors_are_one_line_pointing_at_help(capsys):
    from memsim.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["eval", "digits", "--p", "x"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err
    assert err.startswith("memsim eval: error: argument --p/--p01: ")
    assert err.rstrip().endswith("(see memsim eval --help)")


def test_a_file_where_a_folder_is_expected_is_named_as_a_file(tmp_path, capsys):
    from memsim.cli.main import main

    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["report", str(afile)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"memsim report: error: Results folder {afile} is a file, not a results folder."
    )
    assert main(["sweep", "default", "--out", str(afile), "--no-progress"]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"Output folder {afile} is not a folder (a file is in the way).")
    )
    assert afile.read_text() == "x"


@pytest.mark.parametrize(
    ("argv", "option", "split", "size"),
    [
        (["trace", "digits", "--images", "361"], "--images", "test", 360),
        (["eval", "digits", "--limit", "361"], "--limit", "test", 360),
        (["eval", "digits", "--format", "int8", "--calibration", "1438"], "--calibration",
         "train", 1437),
        (["memory", "digits", "--images", "361"], "--images", "test", 360),
    ],
)  # fmt: skip
def test_image_counts_beyond_a_split_are_a_one_line_error(
    tmp_path, argv, option, split, size, capsys
):
    """trace, eval and memory cut a count beyond the split to the split silently; now each
    names its option, the split and its size, before a model or data set is loaded."""
    from memsim.cli.main import main

    out = tmp_path / "trace.json"
    extra = ["--out", str(out)] if argv[0] == "trace" else []
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"memsim {argv[0]}: error: {option}: ")
    assert f"the '{split}' split of workload digits holds {size:,}" in err[0]
    assert not out.exists()


def test_calibration_options_are_refused_for_a_float_format(capsys, tmp_path):
    """--calibration and --calibration-method are read only by the int formats: a float eval
    or trace refuses them, naming the flag, before anything is written."""
    from memsim.cli.main import main

    for flag, value in (("--calibration", "16"), ("--calibration-method", "minmax")):
        assert main(["eval", "digits", "--limit", "8", flag, value, "--p", "0"]) == 2
        err = capsys.readouterr().err
        assert f"{flag} {value} has no effect with --format float32" in err
    out = tmp_path / "t.json"
    assert main(["trace", "digits", "--images", "8", "--calibration", "16", "--out", str(out)]) == 2
    assert "--calibration 16 has no effect" in capsys.readouterr().err
    assert not out.exists()
    # Without the flags a float eval runs; an int8 one takes them.
    assert main(["eval", "digits", "--limit", "8", "--p", "0"]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(["eval", "digits", "--format", "int8", "--limit", "8", "--calibration", "16"]) == 0


def test_train_counts_are_bounded_ints_like_the_other_verbs():
    """``train --limit``/``--eval-limit`` took any int; 0 or -3 failed after an epoch."""
    verbs = _verbs()
    for verb, flag in (("train", "--limit"), ("train", "--eval-limit"), ("eval", "--limit")):
        assert _flags(verbs[verb])[flag].type.__name__ == "int in [1, 100000000]", (verb, flag)
