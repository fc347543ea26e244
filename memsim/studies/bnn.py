"""The binarized-network energy study: programming condition → weight-memory energy and accuracy.

Last compute stage of the binarized-network data flow (issue 7)::

    BNN workload ─ train plain + error-aware (workloads.bnn_train)
        │
        ├─ BER grid:   p → persistent weight fault maps (memsim.inference.faults) → accuracy
        └─ conditions: device preset → (p01, p10) per stored bit → accuracy
                                      → programming energy of the whole weight memory
        ▼
    points.csv (appended as points finish) → summary.csv → report (memsim.report.bnn)

Energy model (documented choice): every binary weight is programmed exactly once, from an
erased state, with one pulse: a SET (``e_set_pj``) for a +1 (bit 1 = LRS) and a RESET
(``e_reset_pj``) for a −1. A 2T2R cell programs both devices, one SET and one RESET per bit.
So ``E = n_ones·e_set + n_zeros·e_reset`` (1T1R) or ``E = n_bits·(e_set + e_reset)`` (2T2R),
with the counts taken from the trained network's actual weight signs. Real-valued first and
last layers of convolutional BNNs are not in the RRAM weight memory and are not counted.

Accuracy at a rate is the mean over ``repeats`` fault-map draws (one per model load). Draw
``r`` uses the same uniforms for every rate and both networks (common random numbers, see
:mod:`memsim.inference.faults`). "Tolerated BER": the largest grid rate up to which the mean
accuracy stays within ``tolerance_points`` of the network's own error-free accuracy (also
given against the plain network's, and interpolated in log p to the crossing).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

import workloads.bnn  # noqa: F401  (registers the binarized workloads)
from memsim.config import (
    CONFIG_DIR,
    ConfigError,
    build,
    check_choice,
    check_range,
    load_toml,
    to_dict,
)
from memsim.inference.faults import (
    CELLS,
    accuracy,
    cell_rates,
    draw_fault_map,
    fault_uniforms,
    weight_bits,
)
from memsim.rng import child_seed
from workloads.base import Workload, get_workload
from workloads.bnn import save_bnn
from workloads.bnn_train import BNNTrainConfig, train_bnn
from workloads.checkpoints import load_checkpoint

NETWORKS = ("plain", "error_aware")
#: Bump when the points' meaning or columns change.
SCHEMA_VERSION = 1
POINT_COLUMNS = [
    "network",
    "sweep",
    "condition",
    "p01",
    "p10",
    "repeat",
    "accuracy",
    "n_images",
    "energy_pj",
]


def default_ber_grid() -> tuple[float, ...]:
    """1e-5 … 0.3, three points per decade (1, 2, 5)."""
    return tuple(m * 10.0**e for e in range(-5, 0) for m in (1, 2, 5)) + (0.2, 0.3)


@dataclass(frozen=True)
class BNNStudyConfig:
    """What the study models (see the module docstring).

    Parameters
    ----------
    workload : str
        A registered binarized workload (``bnn_digits``, ``bnn_mnist``, ``bnn_cifar10``).
    workload_options : dict
        Options of the workload's factory (``data_root``, ``cfg``...).
    train : BNNTrainConfig
        Recipe of both networks (its ``train_ber`` must be 0; the error-aware network uses
        the same recipe with ``train_ber`` below).
    train_ber : float
        Weight-sign flip rate of error-aware training.
    plain_checkpoint, aware_checkpoint : str, optional
        Trained networks to use instead of training them.
    ber_grid : list of float
        Symmetric bit error rates of the BER sweep.
    conditions : list of str
        Programming-condition presets (names or TOML paths); empty = all shipped presets.
    compliance_ratios : list of float
        Extra conditions: the nominal one at these compliance-current ratios
        (:func:`memsim.device.scale_compliance`).
    cell : {"1t1r", "2t2r"}
    sigma_sa_ln : float
        Sense-amplifier offset of 2T2R reads (ln-R units).
    activation_noise : bool
        Also write the binary activations with the same per-bit rates (fresh per write).
    repeats : int
        Fault-map draws per point.
    eval_limit : int, optional
        Test samples (a fixed stratified prefix); default all.
    tolerance_points : float
        Accuracy loss (percentage points) that still counts as tolerated.
    seed : int
    """

    workload: str = "bnn_digits"
    workload_options: dict = field(default_factory=dict)
    train: BNNTrainConfig = field(default_factory=BNNTrainConfig)
    train_ber: float = 0.04
    plain_checkpoint: str | None = None
    aware_checkpoint: str | None = None
    ber_grid: tuple[float, ...] = field(default_factory=default_ber_grid)
    conditions: tuple[str, ...] = ()
    compliance_ratios: tuple[float, ...] = ()
    cell: str = "1t1r"
    sigma_sa_ln: float = 0.0
    activation_noise: bool = False
    repeats: int = 5
    eval_limit: int | None = None
    tolerance_points: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        own = "BNNStudyConfig"
        if self.train.error_aware:
            raise ValueError(
                "The 'train.train_ber' parameter of BNNStudyConfig must be 0 (the plain recipe); "
                f"set the top-level 'train_ber' for the error-aware network. Got {self.train.train_ber!r}."
            )
        check_range(
            own, "train_ber", self.train_ber, low=0.0, high=0.5, low_open=True, high_open=True
        )
        if not self.ber_grid:
            raise ValueError(f"The 'ber_grid' parameter of {own} must list at least one rate.")
        for p in self.ber_grid:
            check_range(own, "ber_grid", p, low=0.0, high=1.0, low_open=True)
        object.__setattr__(self, "ber_grid", tuple(sorted(float(p) for p in self.ber_grid)))
        for r in self.compliance_ratios:
            check_range(own, "compliance_ratios", r, low=0.0, high=1.0, low_open=True)
        check_choice(own, "cell", self.cell, CELLS)
        check_range(own, "sigma_sa_ln", self.sigma_sa_ln, low=0.0)
        check_range(own, "repeats", self.repeats, kind=int, low=1)
        check_range(own, "tolerance_points", self.tolerance_points, low=0.0, low_open=True)
        check_range(own, "seed", self.seed, kind=int, low=0)
        if self.eval_limit is not None:
            check_range(own, "eval_limit", self.eval_limit, kind=int, low=1)

    def recipe(self, network: str) -> BNNTrainConfig:
        """The training recipe of ``network`` (``plain`` or ``error_aware``)."""
        return (
            self.train
            if network == "plain"
            else dataclasses.replace(self.train, train_ber=self.train_ber)
        )


def load_study_config(name_or_path: str | os.PathLike) -> BNNStudyConfig:
    """A study config from a TOML path or a name under ``configs/bnn/`` (``"digits"``)."""
    path = Path(name_or_path)
    if not path.is_file():
        named = CONFIG_DIR / "bnn" / f"{name_or_path}.toml"
        if not named.is_file():
            known = sorted(p.stem for p in (CONFIG_DIR / "bnn").glob("*.toml"))
            raise FileNotFoundError(
                f"BNN study config {name_or_path} not found (shipped: {', '.join(known)})."
            )
        path = named
    return build(BNNStudyConfig, load_toml(path), source=path)


# ----------------------------------------------------------------------------- pieces


def programming_energy_pj(bits: dict[str, int], condition, cell: str = "1t1r") -> float:
    """Energy to program a weight memory once (see the module docstring)."""
    if cell == "2t2r":
        return bits["bits"] * (condition.e_set_pj + condition.e_reset_pj)
    return bits["ones"] * condition.e_set_pj + bits["zeros"] * condition.e_reset_pj


def study_conditions(config: BNNStudyConfig) -> list:
    """The programming conditions of the study, from the most to the least energy per pulse."""
    from memsim.device import load_condition, load_conditions, scale_compliance

    conditions = (
        [load_condition(c) for c in config.conditions] if config.conditions else load_conditions()
    )
    if config.compliance_ratios:
        nominal = load_condition("nominal")
        for ratio in config.compliance_ratios:
            try:
                conditions.append(scale_compliance(nominal, ratio))
            except ValueError as exc:
                raise ConfigError(
                    f"compliance_ratios: {ratio:g} is not a valid scaling: {exc}"
                ) from None
    return sorted(conditions, key=lambda c: (-(c.e_set_pj + c.e_reset_pj), c.p_bf))


def networks(
    config: BNNStudyConfig, workload: Workload, out: Path | None, *, progress: bool = False
) -> dict[str, nn.Module]:
    """The plain and the error-aware network: given checkpoints, reused ones in ``out``, or trained."""
    given = {"plain": config.plain_checkpoint, "error_aware": config.aware_checkpoint}
    models = {}
    for name in NETWORKS:
        recipe = config.recipe(name)
        path = (
            Path(given[name]) if given[name] else (out / f"{name}.pt" if out is not None else None)
        )
        if path is not None and path.is_file():
            if not given[name] and load_checkpoint(path).get("recipe") != dataclasses.asdict(
                recipe
            ):
                raise ValueError(
                    f"{path} was trained with another recipe; delete it or use another output folder."
                )
            models[name] = workload.load_model(path)
            continue
        if given[name]:
            raise FileNotFoundError(f"Checkpoint {path} ({name}_checkpoint) does not exist.")
        model = train_bnn(workload, recipe, progress=progress)
        if path is not None:
            save_bnn(path, model, workload, recipe)
        models[name] = model
    return models


def _append(path: Path | None, rows: list[dict]) -> None:
    if path is None or not rows:
        return
    frame = pd.DataFrame(rows, columns=POINT_COLUMNS)
    frame.to_csv(path, mode="a", header=not path.is_file(), index=False)


def _key(row) -> tuple:
    return (
        row["network"],
        row["sweep"],
        str(row["condition"]),
        float(row["p01"]),
        float(row["p10"]),
        int(row["repeat"]),
    )


def _resume(folder: Path, config: BNNStudyConfig) -> dict[tuple, dict]:
    """Check ``folder`` belongs to ``config`` (write its config.json) and read finished points."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = json.loads(
        json.dumps({"schema_version": SCHEMA_VERSION, "config": to_dict(config)}, default=str)
    )
    meta_path = folder / "config.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()) != meta:
        raise ValueError(f"{folder} holds results of another config; use another --out folder.")
    meta_path.write_text(json.dumps(meta, indent=2))
    points_path = folder / "points.csv"
    if not points_path.is_file():
        return {}
    stored = pd.read_csv(points_path, dtype={"condition": str}).fillna({"condition": ""})
    return {_key(r): r for r in stored.to_dict("records")}


def _plan(config: BNNStudyConfig, conditions: list, bits: dict, repeat: int):
    """The points of one repeat: (network, sweep, condition, p01, p10, energy_pj)."""
    rates = [(c, *cell_rates(c, config.cell, config.sigma_sa_ln)) for c in conditions]
    for name in NETWORKS:
        if repeat == 0:  # the error-free network is deterministic: measured once
            yield name, "clean", "", 0.0, 0.0, math.nan
        for p in config.ber_grid:
            yield name, "ber", "", p, p, math.nan
        for c, p01, p10 in rates:
            yield (
                name,
                "condition",
                c.name,
                p01,
                p10,
                programming_energy_pj(bits[name], c, config.cell),
            )


def run_study(
    config: BNNStudyConfig, out: str | os.PathLike | None = None, *, progress: bool = True
) -> dict[str, pd.DataFrame]:
    """Run the study; returns ``{"points", "conditions", "summary"}`` frames.

    With ``out`` the networks, ``config.json``, ``points.csv`` (appended point by point, so an
    interrupted run resumes where it stopped), ``conditions.csv`` and ``summary.csv`` are
    written there; an ``out`` holding another config's results is refused.
    """
    from policies.channels import BinaryChannel

    folder = Path(out) if out is not None else None
    done = _resume(folder, config) if folder is not None else {}
    points_path = folder / "points.csv" if folder is not None else None
    workload = get_workload(config.workload, **config.workload_options)
    models = networks(config, workload, folder, progress=progress)
    x, y = workload.dataset("test", limit=config.eval_limit)
    bits = {name: weight_bits(m) for name, m in models.items()}
    conditions = study_conditions(config)
    rows: list[dict] = list(done.values())
    for repeat in range(config.repeats):
        # One draw per repeat, shared by every rate and both networks (common random numbers).
        uniforms = fault_uniforms(models["plain"], child_seed(config.seed, "faults", repeat))
        for name, sweep, label, p01, p10, energy in _plan(config, conditions, bits, repeat):
            row = dict(network=name, sweep=sweep, condition=label, p01=p01, p10=p10, repeat=repeat)
            if _key(row) in done:
                continue
            model = models[name]
            faults = (
                draw_fault_map(model, p01, p10, seed=0, uniforms=uniforms) if p01 or p10 else None
            )
            act = BinaryChannel(p01, p10) if config.activation_noise else None
            act_seed = child_seed(config.seed, "act", sweep, label, p01, repeat)
            acc = accuracy(model, x, y, faults=faults, act_channel=act, seed=act_seed)
            row.update(accuracy=acc, n_images=len(y), energy_pj=energy)
            rows.append(row)
            _append(points_path, [row])
        if progress:
            print(f"bnn study: repeat {repeat + 1}/{config.repeats}", file=sys.stderr, flush=True)
    points = pd.DataFrame(rows, columns=POINT_COLUMNS)
    cond_frame = condition_table(conditions, bits, config)
    summary = summarize(points, config.tolerance_points)
    if folder is not None:
        cond_frame.to_csv(folder / "conditions.csv", index=False)
        summary.to_csv(folder / "summary.csv", index=False)
    return {"points": points, "conditions": cond_frame, "summary": summary}


def condition_table(
    conditions: list, bits: dict[str, dict[str, int]], config: BNNStudyConfig
) -> pd.DataFrame:
    """One row per (network, condition): rates and the weight memory's programming energy."""
    rows = []
    for name, b in bits.items():
        for c in conditions:
            p01, p10 = cell_rates(c, config.cell, config.sigma_sa_ln)
            rows.append(
                {
                    "network": name, "condition": c.name, "cell": config.cell, "p01": p01, "p10": p10,
                    "e_set_pj": c.e_set_pj, "e_reset_pj": c.e_reset_pj, "weight_bits": b["bits"],
                    "ones": b["ones"], "energy_pj": programming_energy_pj(b, c, config.cell),
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- summary


def tolerated_ber(curve: pd.DataFrame, floor: float) -> tuple[float, float, bool]:
    """Largest grid rate up to which the mean accuracy stays >= ``floor``.

    Parameters
    ----------
    curve : DataFrame
        Columns ``p01`` (the rate) and ``accuracy`` (mean per rate), any order.
    floor : float

    Returns
    -------
    grid : float
        The largest passing grid rate before the first failure (0 if the first fails).
    interpolated : float
        Log-linear interpolation of the crossing between that rate and the first failing one
        (``grid`` when no rate fails or the first one fails).
    censored : bool
        True when no grid rate fails (the tolerance is at least ``grid``).
    """
    curve = curve.sort_values("p01")
    p = curve["p01"].to_numpy(float)
    acc = curve["accuracy"].to_numpy(float)
    fail = np.flatnonzero(acc < floor)
    if fail.size == 0:
        return float(p[-1]), float(p[-1]), True
    i = int(fail[0])
    if i == 0:
        return 0.0, 0.0, False
    a0, a1 = acc[i - 1], acc[i]
    frac = (a0 - floor) / (a0 - a1) if a0 != a1 else 0.0
    interp = math.exp(math.log(p[i - 1]) + frac * (math.log(p[i]) - math.log(p[i - 1])))
    return float(p[i - 1]), float(interp), False


def summarize(points: pd.DataFrame, tolerance_points: float = 1.0) -> pd.DataFrame:
    """Per network: error-free accuracy, tolerated BER, lowest energy within tolerance, ratio.

    Pure function of the points frame. References: ``own`` (each network's own error-free
    accuracy) and ``plain`` (the plain network's). ``energy_ratio`` = lowest tolerated
    energy of the plain network / that of this network (so the plain row is 1).
    """
    tol = tolerance_points / 100.0
    means = point_means(points)
    clean = means[means["sweep"] == "clean"].set_index("network")["accuracy"]
    rows = []
    for ref in ("own", "plain"):
        for name in [n for n in NETWORKS if n in clean.index]:
            base = clean[name] if ref == "own" else clean.get("plain", math.nan)
            floor = base - tol
            ber = means[(means["network"] == name) & (means["sweep"].isin(["clean", "ber"]))]
            grid, interp, censored = (
                tolerated_ber(ber, floor) if len(ber) else (math.nan, math.nan, False)
            )
            cond = means[(means["network"] == name) & (means["sweep"] == "condition")]
            ok = cond[cond["accuracy"] >= floor]
            best = ok.loc[ok["energy_pj"].idxmin()] if len(ok) else None
            rows.append(
                {
                    "network": name, "reference": ref, "clean_accuracy": clean[name], "floor_accuracy": floor,
                    "tolerated_ber": grid, "tolerated_ber_interp": interp, "tolerated_censored": censored,
                    "min_energy_pj": math.nan if best is None else float(best["energy_pj"]),
                    "min_energy_condition": "" if best is None else str(best["condition"]),
                    "accuracy_at_min_energy": math.nan if best is None else float(best["accuracy"]),
                }
            )  # fmt: skip
    summary = pd.DataFrame(rows)
    for ref in ("own", "plain"):
        sel = summary["reference"] == ref
        plain = summary[sel & (summary["network"] == "plain")]["min_energy_pj"]
        e_plain = float(plain.iloc[0]) if len(plain) else math.nan
        summary.loc[sel, "energy_ratio"] = e_plain / summary.loc[sel, "min_energy_pj"]
    return summary


def point_means(points: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of accuracy over repeats, per network/sweep/condition/rate."""
    return points.groupby(["network", "sweep", "condition", "p01", "p10"], as_index=False, dropna=False).agg(
        accuracy=("accuracy", "mean"), accuracy_std=("accuracy", "std"), energy_pj=("energy_pj", "mean"),
        repeats=("repeat", "nunique"),
    )  # fmt: skip
