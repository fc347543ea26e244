"""Helpers shared by the tests: stored words of a tensor, bit-for-bit equality, random
tensors of a format, and write records for the memory model.

Imported by test modules as ``from helpers import ...`` (pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memsim.experiment.store import point_id
from memsim.fit import logistic
from memsim.formats import get_format
from memsim.noise.bits import uint_words
from memsim.trace.records import WriteRecord


def words_of(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Stored words as unsigned integers (uint64), whatever the dtype or layout."""
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x).view(get_format(x.dtype).np_uint).astype(np.uint64).ravel()
    return uint_words(x.contiguous(), get_format(x.dtype)).astype(np.uint64).ravel()


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-for-bit equality (NaN patterns included, unlike ``torch.equal``)."""
    return a.dtype == b.dtype and np.array_equal(words_of(a), words_of(b))


def random_words(fmt: str, n: int, seed: int) -> torch.Tensor:
    """``n`` values of ``fmt`` with uniformly random bit patterns (NaN payloads, infinities)."""
    f = get_format(fmt)
    raw = np.random.default_rng(seed).integers(0, 256, size=n * f.width // 8, dtype=np.uint8)
    return torch.from_numpy(raw.copy()).view(f.int_view).view(f.torch_dtype)


def random_values(fmt: str, n: int = 3000, seed: int = 0) -> torch.Tensor:
    """``n`` typical activations stored as ``fmt`` (normal × 3; ±1 for binary; codes for int8)."""
    gen = torch.Generator().manual_seed(seed)
    if fmt == "int8":
        return torch.randint(-128, 128, (n,), generator=gen, dtype=torch.int8)
    if fmt == "binary":
        return torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    return (torch.randn(n, generator=gen) * 3).to(get_format(fmt).torch_dtype)


def activation_record(
    fmt: str = "float32",
    numel: int = 96,
    *,
    layer: int = 0,
    name: str = "layer",
    kind: str = "Conv2d",
    ops: int = 1000,
    ones: float | Sequence[float] = 0.3,
    changed: float = 0.4,
) -> WriteRecord:
    """A write record of one activation tensor with per-position ones fractions ``ones``."""
    width = get_format(fmt).width
    ones_per_bit = (ones,) * width if isinstance(ones, int | float) else tuple(ones)
    return WriteRecord(
        layer, name, kind, "activation", (numel,), numel, fmt, width, ops, ones_per_bit, changed
    )


def binomial_counts_pvalue(counts: np.ndarray, n: int, p: float) -> float:
    """Chi-square p-value of per-word flip counts against Binomial(``n``, ``p``).

    Cells with expected count below 5 are pooled into one tail cell, and a tail still below 5
    is merged into its neighbour.
    """
    from scipy import stats

    observed = np.bincount(counts, minlength=n + 1)
    expected = stats.binom.pmf(np.arange(n + 1), n, p) * counts.size
    keep = expected >= 5
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] < 5:
        obs[-2] += obs[-1]
        exp[-2] += exp[-1]
        obs, exp = obs[:-1], exp[:-1]
    return float(stats.chisquare(obs, exp).pvalue)


def poisson_counts_pvalue(draws: np.ndarray, lam: float) -> float:
    """Chi-square p-value of counts against Poisson(``lam``): one cell per value between the
    1e-4 quantiles, one per tail; cells expected below 5 are left out."""
    from scipy import stats

    lo, hi = int(stats.poisson.ppf(1e-4, lam)), int(stats.poisson.isf(1e-4, lam))
    cells = np.arange(lo, hi + 1)
    observed = np.array(
        [(draws < lo).sum(), *[(draws == k).sum() for k in cells], (draws > hi).sum()]
    )
    probs = np.array(
        [stats.poisson.cdf(lo - 1, lam), *stats.poisson.pmf(cells, lam), stats.poisson.sf(hi, lam)]
    )
    expected = probs * draws.size
    keep = expected >= 5
    chi2 = (((observed - expected) ** 2)[keep] / expected[keep]).sum()
    return float(stats.chi2.sf(chi2, keep.sum() - 1))


def _start_until_points(
    cmd: Sequence[str],
    log: Path,
    points: int,
    *,
    timeout_s: float,
    env: Mapping[str, str] | None,
    new_session: bool,
    sigint_default: bool = False,
) -> subprocess.Popen:
    """Start ``cmd`` and return it, still running, once its results log holds ``points`` lines.

    ``sigint_default``: the command gets SIGINT's default disposition, as from a terminal. A
    test run in the background of a non-interactive shell (CI) ignores SIGINT, and children
    inherit that, so Python there would never raise KeyboardInterrupt.
    """
    proc = subprocess.Popen(
        list(cmd),
        env=None if env is None else dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=new_session,
        preexec_fn=_default_sigint if sigint_default else None,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().count("\n") >= points:
            break
        time.sleep(0.005)
    if proc.poll() is not None:
        message = proc.stderr.read().decode()[-500:]
        proc.stderr.close()
        raise AssertionError(f"the run ended before it could be stopped: {message}")
    return proc


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``, from ``/proc`` (no ``pgrep`` needed)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:  # state, ppid, pgrp; zombies are gone
            members.append(int(stat.parent.name))
    return members


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_after_points(
    cmd: Sequence[str],
    log: Path,
    points: int,
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    new_session: bool = False,
) -> int:
    """Start ``cmd``, SIGKILL it once its results log holds ``points`` lines, return the lines.

    With ``new_session`` the command gets its own process group, killed as a whole afterwards
    (a local Ray instance shares the driver's group).
    """
    proc = _start_until_points(
        cmd, log, points, timeout_s=timeout_s, env=env, new_session=new_session
    )
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if new_session:
            _kill_group(proc)
        assert proc.stderr is not None
        proc.stderr.close()
    return log.read_text().count("\n")


def interrupt_after_points(
    cmd: Sequence[str],
    log: Path,
    points: int,
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> tuple[int, int, str, list[int]]:
    """Start ``cmd`` in a process group of its own and, once its results log holds ``points``
    lines, press Ctrl-C (SIGINT to the whole group, as a terminal does). Returns the log's lines
    after it stopped, its exit status, its standard error, and the processes of its group still
    alive 10 s later (its workers must be gone by then)."""
    proc = _start_until_points(
        cmd, log, points, timeout_s=timeout_s, env=env, new_session=True, sigint_default=True
    )
    assert proc.stderr is not None
    try:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while True:
            left = group_members(proc.pid)
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        _kill_group(proc)
    return log.read_text().count("\n"), proc.returncode, err.decode(), left


def curve_rows(
    policy: str,
    mu_log10: float,
    grid: np.ndarray,
    *,
    repeats: int = 3,
    sigma: float = 0.2,
    noise: float = 0.01,
    seed: int = 0,
    operating: tuple[float, ...] = (1e-6,),
    operating_step: float = 0.0,
) -> list[dict]:
    """Results rows of one synthetic curve: sweep points drawn from a known logistic in log10 p
    (midpoint ``mu_log10``, from 0.95 down to chance 0.1, Gaussian noise), a clean point, and
    operating points at accuracy ``0.94 + operating_step * repeat``."""
    rng = np.random.default_rng(seed)
    rows = []

    def add(kind, p, repeat, acc):
        key = {
            "workload": "w",
            "format": "float32",
            "policy": policy,
            "mask": "all",
            "kind": kind,
            "p": p,
            "p10": p,
            "repeat": repeat,
        }
        rows.append(
            {
                **key,
                "seed": 1,
                "coupled": True,
                "accuracy": float(np.clip(acc, 0, 1)),
                "nonfinite_fraction": 0.0,
                "n_images": 100,
                "num_classes": 10,
                "point_id": point_id(key),
            }
        )

    add("clean", 0.0, 0, 0.95)
    for r in range(repeats):
        for p in grid:
            acc = logistic(np.log10(p), mu_log10, sigma, 0.95, 0.1) + rng.normal(0, noise)
            add("sweep", float(p), r, acc)
        for p in operating:
            add("operating", p, r, 0.94 + operating_step * r)
    return rows


def sweep_row(
    p: float, repeat: int, accuracy: float = 0.5, *, workload: str = "w", **extra: object
) -> dict:
    """One float32 baseline sweep row of a results store (``extra`` columns before its id)."""
    key = {
        "workload": workload,
        "format": "float32",
        "policy": "baseline",
        "mask": "all",
        "kind": "sweep",
        "p": p,
        "p10": p,
        "repeat": repeat,
    }
    return {**key, "accuracy": accuracy, **extra, "point_id": point_id(key)}


@dataclasses.dataclass(frozen=True)
class KillWorkerOnce:
    """Evaluates like ``inner`` but SIGKILLs its own worker process at ``victim``, once."""

    inner: Any  # a NetworkEvaluator
    victim: str
    marker: str

    def __call__(self, task):
        if task.id == self.victim and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner(task)

    def couplable(self, curve, grid) -> bool:
        return self.inner.couplable(curve, grid)
