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
``per_layer``               its own policy per write point (layer), by name or pattern
==========================  ==========================================================

Outside packages register more through the ``memsim.policies`` entry-point group.
"""

from policies.base import POLICIES, Policy
from policies.channels import BinaryChannel, SECDEDChannel
from policies.impl.baseline import Baseline
from policies.impl.binary import Binary
from policies.impl.compose import Compose
from policies.impl.dcw import DataComparisonWrite, exact_energy_pj
from policies.impl.ecc import EccSecded
from policies.impl.low_energy import LowEnergy
from policies.impl.per_layer import PerLayer
from policies.impl.sram import SramExponent, SramMsb
from policies.impl.storage_format import FormatChange
from policies.impl.two_t_two_r import TwoTTwoR
from policies.impl.write_verify import WriteVerify
from policies.loading import (
    POLICY_CONFIG_DIR,
    config_names,
    default_policies,
    get_policy,
    load_policy_file,
    policy_names,
)
from policies.stage import Stage, StorageSpec, register

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
    "PerLayer",
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
