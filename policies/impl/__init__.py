"""The built-in policies, one module each; :mod:`policies` imports them to register them."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Static check (read by mypy, never run): each built-in stage offers what the readers of
    # its slot ask (the protocols of policies.stage).
    from policies.impl.binary import Binary
    from policies.impl.dcw import DataComparisonWrite
    from policies.impl.ecc import EccSecded
    from policies.impl.low_energy import LowEnergy
    from policies.impl.sram import SramExponent, SramMsb
    from policies.impl.storage_format import FormatChange
    from policies.impl.two_t_two_r import TwoTTwoR
    from policies.impl.write_verify import WriteVerify
    from policies.stage import (
        CellStage,
        ConditionStage,
        CostStage,
        FormatStage,
        PlacementStage,
        VerifyStage,
    )

    _format: tuple[type[FormatStage], ...] = (FormatChange, Binary)
    _placement: tuple[type[PlacementStage], ...] = (SramMsb, SramExponent)
    _coding: type[CostStage] = EccSecded
    _cell: type[CellStage] = TwoTTwoR
    _verify: type[VerifyStage] = WriteVerify
    _comparison: type[CostStage] = DataComparisonWrite
    _condition: type[ConditionStage] = LowEnergy
