"""The ``memsim device`` verb: the table of conditions and the distribution plot."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from memsim.cli.main import main  # noqa: E402
from memsim.device import condition_names  # noqa: E402


def test_device_command_prints_every_condition_with_its_numbers(capsys):
    assert main(["device"]) == 0
    out = capsys.readouterr().out
    for name in condition_names():
        assert name in out
    for column in (
        "p01",
        "p10",
        "p_bf",
        "p_2T2R",
        "E_SET pJ",
        "E_RESET pJ",
        "t_pulse ns",
        "t_read ns",
    ):
        assert column in out
    assert "* nominal" in out  # the default bundle's condition is marked
    assert "SECDED(72,64)" in out


def test_device_command_saves_a_png_plot(tmp_path, capsys):
    target = tmp_path / "figs" / "low.png"
    assert main(["device", "low_energy", "--plot", str(target)]) == 0
    assert "* low_energy" in capsys.readouterr().out
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_device_command_reports_unknown_names_in_one_line(capsys):
    assert main(["device", "nomnal"]) == 2
    err = capsys.readouterr().err
    assert "nomnal" in err and "nominal" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["afile/x.png", "x.xyz", "x", "new/sub/x.xyz"])
def test_a_plot_path_that_cannot_be_saved_fails_before_the_table(tmp_path, name, capsys):
    """A parent that is a file, or an extension matplotlib does not save, failed after the
    table was printed (and, for the extension, after the figure was drawn)."""
    (tmp_path / "afile").write_text("")
    assert main(["device", "--plot", str(tmp_path / name)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("memsim device: error: --plot")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()  # no folder made for a plot that is refused


def test_a_condition_and_another_condition_flag_are_refused(capsys):
    """``device low_energy --condition nominal`` showed nominal: the flag silently replaced
    the condition the positional named. A bundle with --condition still works."""
    assert main(["device", "low_energy", "--condition", "nominal"]) == 2
    err = capsys.readouterr().err
    assert "low_energy is a programming condition and --condition nominal" in err
    assert main(["device", "default", "--condition", "low_energy"]) == 0
    assert "* low_energy" in capsys.readouterr().out
    assert main(["device", "nominal", "--condition", "nominal"]) == 0  # the same: no conflict
