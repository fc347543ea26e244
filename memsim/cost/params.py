"""Technology parameters of the area and standby model (presets in ``configs/cost/``).

Where it sits: the energy and time of each access come from the device bundle
(``memsim.device``) and the memory-system parameters (``memsim.timing``); this preset adds
what an architect weighs next to them: the area of a stored bit per technology, the array
efficiency of its macro, its leakage, and the size of the logic a policy adds. Every number
in a preset names its source next to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from memsim.config import CONFIG_DIR, build, check_range, load_toml, preset_path

#: Folder of the shipped area/leakage presets.
PRESET_DIR = CONFIG_DIR / "cost"

#: Logic blocks a policy may add (one per bank), named as in :attr:`TechnologyParams.gates`.
LOGIC_BLOCKS = ("ecc_codec", "verify_compare", "write_compare")


@dataclass(frozen=True)
class TechnologyParams:
    """Area and leakage of the memories and of the policy logic.

    Attributes
    ----------
    feature_nm : float
        Feature size F; areas are given in F².
    rram_cell_area_f2, sram_cell_area_f2 : float
        Area of one RRAM device with its access transistor (1T1R; a 2T2R bit is two) and of
        one SRAM bit cell.
    rram_array_efficiency, sram_array_efficiency : float
        Cell area over macro area (the periphery is the rest), in (0, 1].
    rram_leakage_nw_per_bit, sram_leakage_nw_per_bit : float
        Leakage of a powered macro per bit of capacity (RRAM: its periphery).
    rram_idle_gated, sram_idle_gated : bool
        Whether the macro is power-gated while the device idles between inferences.
    gate_area_f2 : float
        Area of one gate equivalent (NAND2).
    ecc_codec_gates, verify_compare_gates, write_compare_gates : int
        Gate equivalents of each logic block, per bank.
    """

    feature_nm: float = 22.0
    rram_cell_area_f2: float = 53.0
    rram_array_efficiency: float = 0.8722
    sram_cell_area_f2: float = 146.0
    sram_array_efficiency: float = 0.90597
    rram_leakage_nw_per_bit: float = 0.40913
    sram_leakage_nw_per_bit: float = 3.3585
    rram_idle_gated: bool = True
    sram_idle_gated: bool = False
    gate_area_f2: float = 200.0
    ecc_codec_gates: int = 1136
    verify_compare_gates: int = 215
    write_compare_gates: int = 215

    def __post_init__(self) -> None:
        owner = "TechnologyParams"
        for name in ("feature_nm", "rram_cell_area_f2", "sram_cell_area_f2", "gate_area_f2"):
            check_range(owner, name, getattr(self, name), low=0, low_open=True)
        for name in ("rram_array_efficiency", "sram_array_efficiency"):
            check_range(owner, name, getattr(self, name), low=0, high=1, low_open=True)
        for name in ("rram_leakage_nw_per_bit", "sram_leakage_nw_per_bit"):
            check_range(owner, name, getattr(self, name), low=0)
        for name in ("ecc_codec_gates", "verify_compare_gates", "write_compare_gates"):
            check_range(owner, name, getattr(self, name), kind=int, low=0)
        for name in ("rram_idle_gated", "sram_idle_gated"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(
                    f"The '{name}' parameter of {owner} must be a bool. Got {getattr(self, name)!r}."
                )

    def gates(self, block: str) -> int:
        """Gate equivalents per bank of the logic block ``block`` (one of :data:`LOGIC_BLOCKS`)."""
        if block not in LOGIC_BLOCKS:
            raise ValueError(f"Unknown logic block '{block}'. Known: {', '.join(LOGIC_BLOCKS)}.")
        return int(getattr(self, f"{block}_gates"))


def preset_names() -> list[str]:
    """Names of the shipped presets (``configs/cost/*.toml``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_technology(name_or_path: str | os.PathLike = "default", **overrides) -> TechnologyParams:
    """Technology parameters from a preset name or a TOML file (``overrides`` replace fields).

    Raises
    ------
    ConfigError
        Unknown preset (the known ones are listed), unknown keys, values out of range.
    """
    path = preset_path(name_or_path, PRESET_DIR, "technology")
    data = load_toml(path)
    data.pop("description", None)
    return build(TechnologyParams, {**data, **overrides}, source=path)
