"""The results store: append-only, torn-tail safe, one experiment per folder."""

from __future__ import annotations

import json

import pytest
from helpers import sweep_row

from memsim.experiment.store import (
    POINTS_LOG,
    ResultsError,
    ResultsStore,
    check_writable,
    read_log,
)


def row(p: float, repeat: int, accuracy: float = 0.5) -> dict:
    return sweep_row(p, repeat, accuracy)


def test_points_survive_reopen_and_duplicates_are_ignored(tmp_path):
    with ResultsStore.open(tmp_path, config={"a": 1}, digest="h1") as store:
        store.append(row(1e-3, 0))
        store.append(row(1e-3, 0, accuracy=0.9))  # same point again: ignored
        store.append(row(1e-2, 0))
    with ResultsStore.open(tmp_path, config={"a": 1}, digest="h1") as store:
        frame = store.points_frame()
    assert len(frame) == 2
    assert frame.loc[frame["p"] == 1e-3, "accuracy"].item() == 0.5


def test_torn_last_line_is_cut_and_appends_continue(tmp_path):
    with ResultsStore.open(tmp_path, config={}, digest="h") as store:
        store.append(row(1e-3, 0))
    with open(tmp_path / POINTS_LOG, "a") as fh:
        fh.write('{"point_id": "abc", "accur')  # killed mid-write
    with ResultsStore.open(tmp_path, config={}, digest="h") as store:
        assert len(store.finished()) == 1
        store.append(row(1e-2, 1))
    rows = read_log(tmp_path / POINTS_LOG)
    assert [r["repeat"] for r in rows] == [0, 1]
    assert all(json.loads(line) for line in (tmp_path / POINTS_LOG).read_text().splitlines())


def test_nan_accuracy_round_trips(tmp_path):
    with ResultsStore.open(tmp_path, config={}, digest="h") as store:
        store.append(row(1e-3, 0, accuracy=float("nan")))
    (back,) = read_log(tmp_path / POINTS_LOG)
    assert back["accuracy"] != back["accuracy"]


def test_folder_of_another_experiment_is_refused(tmp_path):
    ResultsStore.open(tmp_path, config={"seed": 0}, digest="aaaa").close()
    with pytest.raises(ResultsError, match="different experiment"):
        ResultsStore.open(tmp_path, config={"seed": 1}, digest="bbbb")


def test_non_empty_foreign_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ResultsError, match="not a memsim results folder"):
        ResultsStore.open(tmp_path, config={}, digest="h")


def test_second_sweep_on_same_folder_is_refused(tmp_path):
    with ResultsStore.open(tmp_path, config={}, digest="h"):
        with pytest.raises(ResultsError, match="in use"):
            ResultsStore.open(tmp_path, config={}, digest="h")


def test_read_only_folder_is_a_clear_error(read_only_folder):
    folder = read_only_folder
    with pytest.raises(ResultsError, match="not writable"):
        check_writable(folder)
    with pytest.raises(ResultsError, match="not writable"):
        check_writable(folder / "new-subfolder")


def test_a_folder_written_with_other_noise_draws_is_not_resumed(tmp_path):
    from memsim.experiment.store import EXPERIMENT_FILE, read_experiment
    from memsim.rng import NOISE_DRAWS

    with ResultsStore.open(tmp_path, config={"seed": 0}, digest="aaaa") as store:
        store.append(row(1e-3, 0))
    marker = tmp_path / EXPERIMENT_FILE
    payload = json.loads(marker.read_text())
    assert payload["noise_draws"] == NOISE_DRAWS
    # A folder from a memsim whose draws were different (older ones have no key at all).
    for older in (
        {k: v for k, v in payload.items() if k != "noise_draws"},
        {**payload, "noise_draws": NOISE_DRAWS + 1},
    ):
        marker.write_text(json.dumps(older))
        with pytest.raises(
            ResultsError,
            match=f"noise draws {older.get('noise_draws', 1)}; this memsim makes noise draws {NOISE_DRAWS}",
        ):
            ResultsStore.open(tmp_path, config={"seed": 0}, digest="aaaa")
        assert read_experiment(tmp_path)["config_hash"] == "aaaa"  # still readable, for reports
    assert len(read_log(tmp_path / POINTS_LOG)) == 1  # nothing was touched


def test_points_csv_reads_back_the_exact_p_of_every_grid_point(tmp_path):
    """pandas 2.x's default CSV parser misses some floats by an ulp (2.1544346900318822e-08
    reads back one ulp off), and a point's id hashes its exact p: the store parses float
    columns itself, so that every grid point of the shipped configs reads back bit for bit."""
    import numpy as np
    import pandas as pd

    from memsim.experiment.store import read_points_csv

    ps = [float(p) for p in np.logspace(-8, -1, 22)] + [8.050879460521725e-07]
    rows = [sweep_row(p, 0) for p in ps]
    path = tmp_path / "points.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    back = read_points_csv(path)
    assert [r["p"] for r in back] == ps and [r["p10"] for r in back] == ps


def test_points_csv_float_columns_bypass_the_pandas_float_parser(tmp_path, monkeypatch):
    """pandas 3 parses floats exactly, so the test above passes there without the fix; this
    one does not: every float column of the schema goes through Python's parser."""
    import pandas as pd

    from memsim.experiment import store

    path = tmp_path / "points.csv"
    pd.DataFrame([sweep_row(2.1544346900318822e-08, 0)]).to_csv(path, index=False)
    seen = {}
    real = pd.read_csv

    def spy(*args, **kwargs):
        seen.update(kwargs.get("converters") or {})
        return real(*args, **kwargs)

    monkeypatch.setattr(store.pd, "read_csv", spy)
    store.read_points_csv(path)
    assert set(store.SWEEP_ROWS.float_columns) <= set(seen)
    assert all(seen[c]("2.1544346900318822e-08") == 2.1544346900318822e-08 for c in seen)


def test_points_csv_text_in_a_float_column_names_its_line(tmp_path):
    from memsim.experiment.store import ResultsError, read_points_csv

    path = tmp_path / "points.csv"
    row = sweep_row(1e-3, 0)
    pd_row = {**row, "accuracy": "abc"}
    import pandas as pd

    pd.DataFrame([pd_row]).to_csv(path, index=False)
    with pytest.raises(ResultsError, match=r"line 2: 'accuracy' must be a fraction"):
        read_points_csv(path)
