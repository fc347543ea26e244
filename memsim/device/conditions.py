"""Programming conditions: how a cell is written, what that costs, and how well it works.

A programming condition (compliance current, pulse width, voltage) fixes both resistance
distributions of a written cell and the energy and time of each pulse. Conditions are data:
one TOML file each under ``configs/device/conditions/``, every number with its source next
to it. Policies pick a condition (the low-energy policy trades a higher ``p_bf`` for cheaper
pulses); the memory-system model reads its pulse and read times.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

from memsim.checks import check_non_negative, check_positive
from memsim.device.cell import LognormalState, RRAMCell
from memsim.device.presets import CONDITION_DIR, build_checked, preset_names, read_named, resolve


@dataclass(frozen=True)
class ProgrammingCondition:
    """One way of programming a cell, with its statistics and costs.

    Parameters
    ----------
    name : str
        Preset name (the file stem for shipped presets).
    cell : RRAMCell
        Resistance distributions after a SET (LRS) and a RESET (HRS), and the read threshold.
    e_set_pj, e_reset_pj : float
        Energy of one SET / RESET pulse on one cell.
    t_pulse_ns : float
        Duration of one programming pulse (SET and RESET run in parallel within a unit).
    e_read_pj_per_bit : float
        Energy of reading one bit (used for verify reads and DCW pre-reads), array level:
        periphery included.
    e_write_periphery_pj_per_bit : float
        Energy of the array's write periphery (decoders, drivers) per bit of a write access,
        on top of the cells' pulses, so that a write is priced at array level as a read is;
        0 prices the cells' pulses alone.
    t_read_ns : float
        Duration of one read (also the verify read after each pulse).
    compliance_current_ua, v_set_v : float, optional
        The physical knobs behind the condition, where known.
    description, notes : str
        One line for tables; free text on where the numbers come from.
    """

    name: str
    cell: RRAMCell
    e_set_pj: float
    e_reset_pj: float
    t_pulse_ns: float
    e_read_pj_per_bit: float
    t_read_ns: float
    compliance_current_ua: float | None = None
    v_set_v: float | None = None
    description: str = ""
    notes: str = ""
    e_write_periphery_pj_per_bit: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.cell, RRAMCell):
            raise TypeError(
                f"The 'cell' parameter of ProgrammingCondition must be an RRAMCell. Got {self.cell!r}."
            )
        for key in ("e_set_pj", "e_reset_pj", "t_pulse_ns", "e_read_pj_per_bit", "t_read_ns"):
            check_positive("ProgrammingCondition", key, getattr(self, key))
        check_non_negative(
            "ProgrammingCondition",
            "e_write_periphery_pj_per_bit",
            self.e_write_periphery_pj_per_bit,
        )
        for key in ("compliance_current_ua", "v_set_v"):
            if getattr(self, key) is not None:
                check_positive("ProgrammingCondition", key, getattr(self, key))

    @property
    def p01(self) -> float:
        """P(stored 0 reads as 1) after one RESET pulse."""
        return self.cell.p01

    @property
    def p10(self) -> float:
        """P(stored 1 reads as 0) after one SET pulse."""
        return self.cell.p10

    @property
    def p_bf(self) -> float:
        """Single-pulse bit-flip probability (see :attr:`RRAMCell.p_bf`)."""
        return self.cell.p_bf

    @property
    def e_pulse_mean_pj(self) -> float:
        """Mean of the SET and RESET pulse energies (a random bit)."""
        return 0.5 * (self.e_set_pj + self.e_reset_pj)

    def p_2t2r(self, sigma_sa_ln: float = 0.0) -> float:
        """Error probability of a 2T2R differential read with these devices."""
        return self.cell.p_2t2r(sigma_sa_ln)


def scale_compliance(
    base: ProgrammingCondition, current_ratio: float, name: str | None = None
) -> ProgrammingCondition:
    """A condition programmed with ``current_ratio`` × the base compliance current.

    The continuous knob of sources §7.4 (literature scaling, not re-measured): pulse
    energies ∝ I_C; LRS median ∝ 1/I_C; LRS log-sigma ∝ I_C^(-1/2); the HRS is set by the
    RESET voltage and stays as it is. Lowering the current moves the LRS up towards the HRS
    and widens it, so ``p_bf`` rises.

    Parameters
    ----------
    base : ProgrammingCondition
    current_ratio : float
        I_C / I_C,base, > 0 (below 1 for low-energy writes). The scaled LRS median must stay
        below the HRS median.
    name : str, optional
        Name of the result (default ``"<base>_ic<ratio>"``).
    """
    check_positive("scale_compliance", "current_ratio", current_ratio)
    lrs = base.cell.lrs
    cell = RRAMCell(
        LognormalState(lrs.median_ohm / current_ratio, lrs.sigma_ln / math.sqrt(current_ratio)),
        base.cell.hrs,
    )
    current = (
        None if base.compliance_current_ua is None else base.compliance_current_ua * current_ratio
    )
    return dataclasses.replace(
        base,
        name=name or f"{base.name}_ic{current_ratio:g}",
        cell=cell,
        e_set_pj=base.e_set_pj * current_ratio,
        e_reset_pj=base.e_reset_pj * current_ratio,
        compliance_current_ua=current,
        description=f"{base.name} at {current_ratio:g}x compliance current (scaling law, sources §7.4)",
        notes="Derived with memsim.device.scale_compliance.",
    )


def condition_names() -> list[str]:
    """Names of the shipped programming conditions."""
    return preset_names(CONDITION_DIR)


def load_condition(name_or_path: str | os.PathLike | ProgrammingCondition) -> ProgrammingCondition:
    """A programming condition from a preset name (``"nominal"``) or a TOML path.

    Raises
    ------
    ConfigError
        Unknown name (the known ones are listed), unknown keys, keys without units, or
        out-of-range values (the key and file are named).
    """
    if isinstance(name_or_path, ProgrammingCondition):
        return name_or_path
    path = resolve(name_or_path, CONDITION_DIR, "programming condition")
    return build_checked(ProgrammingCondition, read_named(path), source=path)


def load_conditions() -> list[ProgrammingCondition]:
    """All shipped conditions, from the most to the least energy per pulse (nominal first)."""
    conditions = [load_condition(name) for name in condition_names()]
    return sorted(conditions, key=lambda c: (-(c.e_set_pj + c.e_reset_pj), c.p_bf))
