"""int4 storage: two codes per byte, static post-training quantization as for int8."""

from __future__ import annotations

import math

import pytest
import torch

from memsim.formats import get_format
from memsim.inference.int8 import pack_int4, unpack_int4
from memsim.inference.network import NoisyNetwork
from memsim.noise.channel import BitFlip
from memsim.trace.capture import trace_model
from workloads.resnet import resnet

X = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(2))


def test_pack_unpack_round_trip_and_layout():
    codes = torch.arange(-8, 8, dtype=torch.int8).repeat(2)[:-1]  # odd count: padded
    packed = pack_int4(codes)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(codes.numel() / 2)
    assert torch.equal(unpack_int4(packed, codes.numel()), codes)
    assert pack_int4(torch.tensor([1, -1], dtype=torch.int8)).tolist() == [0x1F]
    assert get_format("int4").bytes_per_element == 0.5


def test_int4_network_stores_packed_codes_of_at_most_16_levels():
    model = resnet("resnet_tiny").eval()
    net = NoisyNetwork(model, "int4", granularity="op", calibration=X)
    seen = {}

    def observe(wp, stored):
        seen[wp.index] = (stored.dtype, stored.numel(), wp.numel)

    net.observe(X, observe)
    assert seen and all(dt == torch.uint8 for dt, _, _ in seen.values())
    assert all(n == math.ceil(len(X) * per / 2) for _, n, per in seen.values())
    codes = {}
    net.observe(
        X, lambda wp, stored: codes.setdefault(wp.index, unpack_int4(stored, len(X) * wp.numel))
    )
    values = torch.cat([c.float() for c in codes.values()])
    assert values.min() >= -8 and values.max() <= 7
    assert max(c.unique().numel() for c in codes.values()) > 8  # the 4-bit range is used
    weights = [p for p in net.weight_points if p.role == "weight"]
    assert weights and {p.format for p in weights} == {"int4"}
    for row in net.model.conv.weight:  # per-output-channel symmetric codes in [-7, 7]
        assert row.unique().numel() <= 15


def test_int4_flips_change_logits_and_trace_counts_four_bits():
    model = resnet("resnet_tiny").eval()
    net = NoisyNetwork(model, "int4", calibration=X)
    assert not torch.equal(net.logits(X), net.logits(X, BitFlip("int4", 0.05), seed=1))
    with pytest.raises(TypeError, match="packed uint8"):
        BitFlip("int4", 0.1).apply_(torch.zeros(4, dtype=torch.int8), 0)
    trace = trace_model(model, X, "int4", workload_name="t")
    assert all(r.bits == 4 and len(r.ones_fraction) == 4 for r in trace.records)
    assert trace.written_bits == 4 * trace.written_elements


def test_word_coding_policies_refuse_packed_int4():
    from memsim.experiment.config import PolicySpec
    from memsim.experiment.plugins import make_policy

    with pytest.raises(ValueError, match="int4 packs 2 codes per byte"):
        make_policy(PolicySpec("ecc_secded", "ecc_secded")).validate("int4")
    make_policy(PolicySpec("write_verify", "write_verify")).validate("int4")
