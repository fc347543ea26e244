"""A small golden run of the default experiment: its accuracy points never change silently.

The default config, shrunk by overrides to run in seconds, is swept and its ``points.csv``
compared exactly (same rows, same accuracies, same non-finite fractions) with the copy under
``tests/golden/``. A change that moves a single flip moves an accuracy and fails here.
Regenerate deliberately, after checking why the numbers moved, with
``MEMSIM_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from memsim.experiment import RunOptions, load_experiment, run_experiment

GOLDEN = Path(__file__).parent / "golden" / "default_small_points.csv"
OVERRIDES = [
    "grid.p_min=1e-6",
    "grid.points_per_decade=1",
    "sweep.repeats=2",
    "sweep.images=96",
    "memory.enabled=false",
]
KEY = ["workload", "format", "policy", "mask", "kind", "p", "p10", "repeat", "seed"]
VALUES = ["accuracy", "nonfinite_fraction", "n_images"]


@pytest.fixture(scope="module")
def points(tmp_path_factory) -> pd.DataFrame:
    config, _ = load_experiment(overrides=OVERRIDES)
    out = tmp_path_factory.mktemp("golden")
    run_experiment(config, RunOptions(out=out, progress=False), sweep_only=True)
    frame = pd.read_csv(out / "points.csv")
    if os.environ.get("MEMSIM_REGEN_GOLDEN") == "1":
        frame[KEY + VALUES].to_csv(GOLDEN, index=False)
    return frame


def test_golden_run_covers_every_default_curve(points):
    curves = points[["format", "policy"]].drop_duplicates()
    # float32 and int8 × four policies, less sram_exponent × int8 (no exponent to keep).
    assert len(curves) == 7
    assert ("int8", "sram_exponent") not in set(map(tuple, curves.to_numpy()))
    assert len(points) > 50


def test_default_points_equal_the_golden_copy_exactly(points):
    golden = pd.read_csv(GOLDEN)
    got = points[KEY + VALUES].sort_values(KEY).reset_index(drop=True)
    want = golden.sort_values(KEY).reset_index(drop=True)
    assert len(got) == len(want)
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_dtype=False)
    # And the run is not trivially flat: some point lost accuracy to bit flips.
    assert got["accuracy"].min() < got["accuracy"].max()
