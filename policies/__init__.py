"""Memory policies: how each activation's bits are stored, and what that does and costs.

``get_policy(spec)`` turns a name, a TOML table or a list into a :class:`Policy`; every
built-in policy is a composable stage (:mod:`policies.stage`) registered in ``POLICIES``:

==========================  ==========================================================
``baseline``                single pulse, every bit in RRAM
``write_verify``            write-check-correct, up to ``max_extra_rounds`` re-pulses
``sram_msb``                first ``n`` bits (default sign + exponent) in SRAM
``sram_exponent``           sign and exponent in SRAM, mantissa in RRAM
``format``                  store in another format (float16, bfloat16, float64, int8)
``ecc_secded``              (72,64) SECDED codewords over the RRAM bits
``data_comparison_write``   pulse only the changed cells
``low_energy``              a cheaper programming condition with a higher ``p_bf``
``two_t_two_r``             differential 2T2R cells
``binary``                  1-bit ±1 values (binarized networks)
``compose``                 several of the above at once
==========================  ==========================================================

Outside packages register more through the ``memsim.policies`` entry-point group.
"""

from .base import POLICIES, Policy
from .baseline import Baseline
from .binary import Binary
from .channels import BinaryChannel, SECDEDChannel
from .compose import Compose
from .dcw import DataComparisonWrite, exact_energy_pj
from .ecc import EccSecded
from .loading import (
    POLICY_CONFIG_DIR,
    config_names,
    default_policies,
    get_policy,
    load_policy_file,
    policy_names,
)
from .low_energy import LowEnergy
from .sram import SramExponent, SramMsb
from .stage import Stage, StorageSpec, register
from .storage_format import FormatChange
from .two_t_two_r import TwoTTwoR
from .write_verify import WriteVerify

__all__ = [
    "POLICIES",
    "POLICY_CONFIG_DIR",
    "Baseline",
    "Binary",
    "BinaryChannel",
    "Compose",
    "DataComparisonWrite",
    "EccSecded",
    "FormatChange",
    "LowEnergy",
    "Policy",
    "SECDEDChannel",
    "SramExponent",
    "SramMsb",
    "Stage",
    "StorageSpec",
    "TwoTTwoR",
    "WriteVerify",
    "config_names",
    "default_policies",
    "exact_energy_pj",
    "get_policy",
    "load_policy_file",
    "policy_names",
    "register",
]
