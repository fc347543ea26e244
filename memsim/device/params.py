"""The device/technology bundle: one object with everything policies and the memory model need.

``DeviceParams`` groups a programming condition (RRAM statistics, pulse energies and times),
SRAM and SECDED costs, and the read-circuit parameters (verify margin and misreads, the 2T2R
sense-amplifier offset). Policies (``policies/``) turn it into noise and write plans; the
SimPy model reads times from it. Bundles are TOML presets in ``configs/device/``; the
condition is named (``condition = "nominal"``) or given inline as a table.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from typing import Any

from memsim.checks import check_non_negative, check_probability
from memsim.config import ConfigError, load_toml
from memsim.device.conditions import ProgrammingCondition, condition_names, load_condition
from memsim.device.offchip import OffchipParams
from memsim.device.presets import (
    CONDITION_DIR,
    DEVICE_DIR,
    build_checked,
    looks_like_path,
    preset_names,
    read_named,
    resolve,
)
from memsim.device.sram_ecc import SECDEDParams, SRAMParams
from memsim.device.verify import WriteVerify

#: The bundle used when only a condition is named.
DEFAULT_DEVICE = "default"


@dataclass(frozen=True)
class ReadParams:
    """Read-circuit parameters.

    Parameters
    ----------
    verify_margin_ln : float
        Margin of the verify threshold beyond the read threshold, ln-R units.
    verify_misread_prob : float
        Probability that a verify read passes a failed cell (floors the residual error).
    sigma_sa_ln : float
        2T2R sense-amplifier offset, ln-R units.
    """

    verify_margin_ln: float = 0.0
    verify_misread_prob: float = 0.0
    sigma_sa_ln: float = 0.0

    def __post_init__(self) -> None:
        check_non_negative("ReadParams", "verify_margin_ln", self.verify_margin_ln)
        check_probability("verify_misread_prob", self.verify_misread_prob, owner="ReadParams")
        check_non_negative("ReadParams", "sigma_sa_ln", self.sigma_sa_ln)


@dataclass(frozen=True)
class DeviceParams:
    """Everything about the memory technology that a policy or the memory model may ask.

    Parameters
    ----------
    name : str
    condition : ProgrammingCondition
    sram : SRAMParams
    secded : SECDEDParams
    read : ReadParams
    description : str
    offchip : OffchipParams
        Off-chip memory the weights may be read from.
    """

    name: str
    condition: ProgrammingCondition
    sram: SRAMParams
    secded: SECDEDParams = field(default_factory=SECDEDParams)
    read: ReadParams = field(default_factory=ReadParams)
    description: str = ""
    offchip: OffchipParams = field(default_factory=OffchipParams)

    @property
    def p01(self) -> float:
        return self.condition.p01

    @property
    def p10(self) -> float:
        return self.condition.p10

    @property
    def p_bf(self) -> float:
        return self.condition.p_bf

    @property
    def p_2t2r(self) -> float:
        """2T2R read error with these devices and this sense amplifier."""
        return self.condition.p_2t2r(self.read.sigma_sa_ln)

    def write_verify(self, max_extra_rounds: int) -> WriteVerify:
        """A write-verify scheme with this bundle's verify margin and misread probability."""
        return WriteVerify(
            max_extra_rounds, self.read.verify_margin_ln, self.read.verify_misread_prob
        )

    def with_condition(self, condition: str | os.PathLike | ProgrammingCondition) -> DeviceParams:
        """The same technology programmed with another condition (name, path or object)."""
        cond = load_condition(condition)
        bundle = self.name.split(":")[0]  # "default:low_energy" -> "default"
        return dataclasses.replace(self, name=f"{bundle}:{cond.name}", condition=cond)


def device_names() -> list[str]:
    """Names of the shipped device bundles."""
    return preset_names(DEVICE_DIR)


def _from_data(data: dict[str, Any], source: os.PathLike) -> DeviceParams:
    cond = data.get("condition")
    if isinstance(cond, str):
        try:
            data["condition"] = load_condition(cond)
        except ConfigError as exc:
            raise ConfigError(f"Key 'condition' in {source}: {exc}") from None
    return build_checked(DeviceParams, data, source=source)


def names_condition(name_or_path: str | os.PathLike | DeviceParams) -> bool:
    """Whether :func:`load_device` reads ``name_or_path`` as a programming condition rather
    than a bundle: a condition name that names no bundle, or a TOML file with a ``[cell]``
    table (a missing file raises as :func:`load_device` does)."""
    if isinstance(name_or_path, DeviceParams):
        return False
    if looks_like_path(name_or_path):
        return "cell" in load_toml(resolve(name_or_path, DEVICE_DIR, "device preset"))
    return (
        isinstance(name_or_path, str)
        and name_or_path not in device_names()
        and name_or_path in condition_names()
    )


def load_device(
    name_or_path: str | os.PathLike | DeviceParams = DEFAULT_DEVICE,
    *,
    condition: str | os.PathLike | ProgrammingCondition | None = None,
) -> DeviceParams:
    """A device bundle from a preset name, a TOML path, or a programming-condition name.

    Parameters
    ----------
    name_or_path : str, path or DeviceParams
        A bundle in ``configs/device/`` (``"default"``), a bundle TOML file, or a programming
        condition (a name from :func:`condition_names` or a condition TOML file, recognised by
        its ``[cell]`` table); a condition alone is wrapped in the default bundle.
    condition : optional
        Replace the bundle's programming condition.

    Raises
    ------
    ConfigError
        Unknown names (the known bundles and conditions are listed), unknown keys, keys
        without units, out-of-range values; the key and file are named.
    """
    if isinstance(name_or_path, DeviceParams):
        device = name_or_path
    elif looks_like_path(name_or_path):
        path = resolve(name_or_path, DEVICE_DIR, "device preset")
        if "cell" in load_toml(path):  # a programming condition, not a bundle
            device = load_device(DEFAULT_DEVICE, condition=path)
        else:
            device = _from_data(read_named(path), path)
    elif names_condition(name_or_path):
        device = load_device(DEFAULT_DEVICE, condition=name_or_path)
    else:
        if isinstance(name_or_path, str) and name_or_path not in device_names():
            close = difflib.get_close_matches(name_or_path, device_names() + condition_names(), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"Unknown device preset '{name_or_path}'.{hint} Known bundles: {', '.join(device_names()) or 'none'} "
                f"(in {DEVICE_DIR}); known programming conditions: {', '.join(condition_names()) or 'none'} "
                f"(in {CONDITION_DIR})."
            )
        path = resolve(name_or_path, DEVICE_DIR, "device preset")
        device = _from_data(read_named(path), path)
    return device if condition is None else device.with_condition(condition)
