"""Controller arithmetic: a write plan becomes bursts of write units mapped over banks.

Where it sits: between a :class:`~memsim.timing.plan.WritePlan` (what one tensor costs per
unit) and the SimPy model (:mod:`memsim.timing.model`, which only moves bursts through
queues and banks). Everything here is vectorised NumPy over the units of one tensor: pulse
rounds are sampled per unit in one call, units are assigned to banks round-robin, and
consecutive units bound for the same bank are merged into bursts whose service time is the
sum of theirs. The SimPy model then spends one event per burst, never one per bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memsim.timing.params import MemoryParams
from memsim.timing.plan import ReadPlan, WritePlan


@dataclass(frozen=True)
class Bursts:
    """Bursts of one tensor, in the order the controller issues them.

    Attributes
    ----------
    bank : ndarray of int64
        Bank serving each burst.
    units : ndarray of int64
        Write units in each burst (each holds one write-queue entry while it waits).
    rounds : ndarray of float64
        Pulse rounds summed over the burst's units (0 for SRAM).
    service_ns : ndarray of float64
        Time the bank is busy with the burst.
    """

    bank: np.ndarray
    units: np.ndarray
    rounds: np.ndarray
    service_ns: np.ndarray

    def __len__(self) -> int:
        return len(self.bank)

    @classmethod
    def empty(cls) -> Bursts:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z.astype(float), z.astype(float))


def sample_rounds(
    rounds_pmf: tuple[float, ...] | np.ndarray,
    n_units: int,
    rng: np.random.Generator | None,
    *,
    deterministic: bool = False,
) -> np.ndarray:
    """Pulse rounds of ``n_units`` write units, drawn in one vectorised call.

    Parameters
    ----------
    rounds_pmf : sequence of float
        ``rounds_pmf[r]`` is the probability that a unit needs ``r + 1`` rounds.
    n_units : int
        Units to draw for.
    rng : numpy Generator
        Source of randomness (unused when ``deterministic``).
    deterministic : bool
        Give every unit the expected number of rounds instead of a draw (closed-form checks).

    Returns
    -------
    ndarray of float64, shape (n_units,)
    """
    pmf = np.clip(np.asarray(rounds_pmf, dtype=float), 0.0, None)
    pmf = pmf / pmf.sum()
    rounds = np.arange(1, len(pmf) + 1, dtype=float)
    if deterministic or len(pmf) == 1:
        return np.full(n_units, float(np.dot(rounds, pmf)))
    if rng is None:
        raise ValueError("sample_rounds needs an rng unless deterministic=True.")
    # Inverse CDF: one uniform per unit, no per-bit draws (docs/sources.md §8.3 item 4).
    cdf = np.cumsum(pmf)
    idx = np.searchsorted(cdf, rng.random(n_units), side="right")
    return rounds[np.minimum(idx, len(pmf) - 1)]


def split_units(
    n_units: int,
    *,
    n_banks: int,
    interleave_units: int,
    burst_units: int,
    first_unit: int,
    unit_ns: float,
    round_ns: float = 0.0,
    rounds: np.ndarray | None = None,
    accessed: np.ndarray | None = None,
) -> Bursts:
    """Map ``n_units`` consecutive write units over banks and merge them into bursts.

    Unit ``j`` of the tensor is the memory system's unit ``first_unit + j`` and goes to bank
    ``((first_unit + j) // interleave_units) % n_banks``. Each bank's units, in order, are cut
    into bursts of at most ``burst_units``; bursts are issued in the order of their first unit.
    A burst's service time is ``units × unit_ns + (sum of its rounds) × round_ns``, with
    ``units`` counted by ``accessed`` where given (per unit, 1 or 0, or the expected share:
    a unit the controller knows unchanged is not accessed at all).
    """
    if n_units == 0:
        return Bursts.empty()
    j = np.arange(n_units, dtype=np.int64)
    bank = ((first_unit + j) // interleave_units) % n_banks
    order = np.argsort(bank, kind="stable")  # units grouped by bank, each group in unit order
    bank_sorted = bank[order]
    counts = np.bincount(bank, minlength=n_banks)
    group_start = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(n_units, dtype=np.int64) - group_start[bank_sorted]
    new_burst = np.ones(n_units, dtype=bool)
    new_burst[1:] = (bank_sorted[1:] != bank_sorted[:-1]) | (rank[1:] % burst_units == 0)
    starts = np.flatnonzero(new_burst)
    units = np.diff(np.append(starts, n_units))
    if rounds is None:
        burst_rounds = np.zeros(len(starts))
    else:
        burst_rounds = np.add.reduceat(np.asarray(rounds, dtype=float)[order], starts)
    if accessed is None:
        burst_access = units.astype(float)
    else:
        burst_access = np.add.reduceat(np.asarray(accessed, dtype=float)[order], starts)
    issue = np.argsort(order[starts], kind="stable")
    units = units[issue]
    burst_rounds = burst_rounds[issue]
    return Bursts(
        bank=bank_sorted[starts][issue],
        units=units,
        rounds=burst_rounds,
        service_ns=burst_access[issue] * unit_ns + burst_rounds * round_ns,
    )


def passes(plan: WritePlan, params: MemoryParams) -> int:
    """Sequential programming passes a unit of ``plan`` needs on banks of ``params``.

    A unit programs ``unit_bits × devices_per_bit`` cells (a 2T2R bit is two devices) with
    ``write_width_bits`` drivers, so it takes ``ceil(cells / write_width_bits)`` passes.
    """
    cells = plan.unit_bits * plan.devices_per_bit
    return -(-cells // params.write_width_bits)


def rram_unit_ns(plan: WritePlan, params: MemoryParams) -> float:
    """Per-unit time that does not depend on rounds: ECC encode, access overhead and the
    pre-read of the old word (one read per pass; 0 unless the policy pre-reads)."""
    return plan.t_ecc_ns + params.t_access_ns + passes(plan, params) * plan.t_pre_read_ns


def rram_round_ns(plan: WritePlan, params: MemoryParams) -> float:
    """Time of one pulse round of one unit: every pass pulses, then verifies when enabled."""
    return passes(plan, params) * (plan.t_pulse_ns + plan.t_verify_ns)


def rram_bursts(
    plan: WritePlan,
    params: MemoryParams,
    first_unit: int,
    rng: np.random.Generator | None,
    *,
    deterministic: bool = False,
) -> Bursts:
    """The RRAM bursts of one tensor, rounds sampled per unit (vectorised).

    A unit that changes no cell (probability ``plan.unchanged_unit_prob``, a comparison write)
    takes no round: only its access and pre-read where the controller reads the old word, and
    nothing at all where a shadow copy tells it (``t_pre_read_ns`` 0)."""
    n = plan.n_units
    rounds = sample_rounds(plan.rounds_pmf, n, rng, deterministic=deterministic)
    skip = plan.unchanged_unit_prob
    accessed = None
    if skip > 0.0:
        if deterministic:
            rounds = rounds * (1.0 - skip)
            changed = np.full(n, 1.0 - skip)
        elif rng is None:
            raise ValueError("rram_bursts needs an rng unless deterministic=True.")
        else:
            changed = (rng.random(n) >= skip).astype(float)
            rounds = rounds * changed
        accessed = changed if plan.t_pre_read_ns == 0 else None
    return split_units(
        n,
        n_banks=params.n_banks,
        interleave_units=params.interleave_units,
        burst_units=params.effective_burst_units,
        first_unit=first_unit,
        unit_ns=rram_unit_ns(plan, params),
        round_ns=rram_round_ns(plan, params),
        rounds=rounds,
        accessed=accessed,
    )


def sram_bursts(plan: WritePlan, params: MemoryParams, first_unit: int) -> Bursts:
    """The SRAM bursts of one tensor (fixed access time, no rounds)."""
    return split_units(
        plan.n_sram_units,
        n_banks=params.sram_banks,
        interleave_units=1,
        burst_units=params.effective_burst_units,
        first_unit=first_unit,
        unit_ns=plan.t_sram_ns,
    )


def write_addresses(n_records: int, plans: dict[int, WritePlan]) -> dict[int, tuple[int, int]]:
    """First RRAM and SRAM unit of each planned record: the units follow execution order."""
    addresses = {}
    rram_next = sram_next = 0  # interleaving continues across tensors
    for i in range(n_records):
        plan = plans.get(i)
        if plan is not None:
            addresses[i] = (rram_next, sram_next)
            rram_next += plan.n_units
            sram_next += plan.n_sram_units
    return addresses


def units_per_bank(
    n_units: int, *, n_banks: int, interleave_units: int, first_unit: int
) -> np.ndarray:
    """How many of the units ``first_unit … first_unit + n_units − 1`` each bank holds.

    The mapping of :func:`split_units` in closed form: it repeats with period
    ``interleave_units × n_banks`` units, each period giving every bank ``interleave_units``;
    only the remainder is counted unit by unit (fewer than one period).
    """
    period = interleave_units * n_banks
    full, rest = divmod(n_units, period)
    counts = np.full(n_banks, full * interleave_units, dtype=np.int64)
    start = first_unit + full * period
    tail = ((start + np.arange(rest, dtype=np.int64)) // interleave_units) % n_banks
    return counts + np.bincount(tail, minlength=n_banks)


def read_bursts(read: ReadPlan, params: MemoryParams) -> Bursts:
    """The bursts of one read: its units over the banks of its memory, as they were written.

    Each bank's units are cut into bursts of ``read_burst_units`` as :func:`split_units` cuts
    them, but counted in closed form (:func:`units_per_bank`): a read of millions of weight
    words costs O(bursts), not O(units). Bursts are issued round-robin over the banks,
    starting at the bank of the first unit.
    PERF: the layer waits for all its reads, so the issue order changes no completion time.
    """
    if read.memory == "rram":
        banks, interleave = params.n_banks, params.interleave_units
    elif read.memory == "sram":
        banks, interleave = params.sram_banks, 1
    else:
        banks, interleave = 1, 1
    if read.units == 0:
        return Bursts.empty()
    counts = units_per_bank(
        read.units, n_banks=banks, interleave_units=interleave, first_unit=read.first_unit
    )
    size = params.read_burst_units
    first_bank = (read.first_unit // interleave) % banks
    order = (first_bank + np.arange(banks)) % banks  # banks in issue order
    n_bursts = -(-counts[order] // size)
    rank = np.concatenate([np.arange(k, dtype=np.int64) for k in n_bursts])
    bank = np.repeat(order, n_bursts)
    units = np.minimum(size, counts[bank] - rank * size)
    issue = np.lexsort((np.repeat(np.arange(banks), n_bursts), rank))
    bank, units = bank[issue], units[issue]
    return Bursts(
        bank=bank,
        units=units,
        rounds=np.zeros(len(bank)),
        service_ns=units * read.t_unit_ns,
    )
