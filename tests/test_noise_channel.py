"""Write channels and the flip-demo CLI verb."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from memsim.cli.flip_demo import add_parser, demo_tensor, field_table
from memsim.noise import BitFlip, Noiseless, flip


def test_noiseless_channel_leaves_bits_alone():
    x = torch.randn(100)
    before = x.clone()
    ch = Noiseless()
    assert ch.is_noiseless and ch.apply_(x, 1) is x and torch.equal(x, before)


@pytest.mark.parametrize("kwargs", [dict(p01=0.0), dict(p01=0.5, bits=[]), dict(p01=0.0, p10=0.0)])
def test_bitflip_knows_when_it_is_noiseless(kwargs):
    assert BitFlip("float32", **kwargs).is_noiseless


def test_bitflip_applies_in_place_with_fresh_draws_per_seed():
    ch = BitFlip("bfloat16", 0.05, 0.01, bits="mantissa")
    assert not ch.is_noiseless
    assert ch.p01_vector[:9].sum() == 0 and (ch.p01_vector[9:] == 0.05).all()
    x = torch.randn(4000).to(torch.bfloat16)
    a = x.clone()
    assert ch.apply_(a, 1) is a and not torch.equal(a, x)
    b = x.clone()
    ch.apply_(b, 2)
    assert not torch.equal(a, b)
    # sign and exponent (positions 0-8) are protected
    changed = (a.view(torch.int16) ^ x.view(torch.int16)).numpy().view(np.uint16)
    assert not (changed & np.uint16(0xFF80)).any()


def test_bitflip_rejects_bad_arguments_at_construction():
    with pytest.raises(ValueError, match="p10"):
        BitFlip("float32", 0.1, 1.5)
    with pytest.raises(ValueError, match="engine.*Did you mean 'numba'"):
        BitFlip("float32", 0.1, engine="numbaa")


@pytest.mark.parametrize("engine", ["auto", "numba", "torch", "reference"])
def test_bitflip_writes_exactly_what_flip_would(engine):
    """The channel's per-write shortcut (checks done once) gives flip_'s flips for the seed."""
    ch = BitFlip("float32", 1e-3, 4e-3, bits="mantissa", engine=engine)
    x = torch.randn(40, 1000)[:, ::2]  # non-contiguous too
    a = ch.apply_(x.clone(), 7)
    b = flip(x, ch.p01_vector, ch.p10_vector, bits="mantissa", engine=engine, seed=7)
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))
    assert not torch.equal(a.view(torch.int32), x.view(torch.int32))


def test_bitflip_checks_every_write_it_cannot_shortcut():
    ch = BitFlip("float16", 0.1)
    with pytest.raises(ValueError, match="length 32"):
        ch.apply_(torch.zeros(10), 1)  # a float32 tensor for a float16 channel
    with pytest.raises(ValueError, match="seed"):
        ch.apply_(torch.zeros(10, dtype=torch.float16), -1)
    y = np.zeros(100, np.float16)
    assert ch.apply_(y, 2) is y and y.any()  # NumPy input takes the general path


def test_field_table_counts_match_the_flips():
    x = demo_tensor("float16", 2000, seed=0)
    y = x.clone()
    y.view(torch.int16)[:10] ^= 0x0001  # flip the last mantissa bit of ten words
    rows = field_table(x, y, 0.01, 0.01, np.ones(16, bool))
    mantissa = {r["direction"]: r["observed"] for r in rows if r["field"] == "mantissa"}
    assert mantissa["0→1"] + mantissa["1→0"] == 10
    assert all(r["observed"] == 0 for r in rows if r["field"] != "mantissa")


def main(argv: list[str]) -> int:
    """Run the verb through its own parser (independent of the other verbs' modules)."""
    parser = argparse.ArgumentParser(prog="memsim")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_flip_demo_prints_counts_and_says_what_it_is(capsys):
    assert (
        main(["flip-demo", "--elements", "5000", "--p01", "0.01", "--p10", "0.02", "--seed", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "demonstration of the bit-flip operator only" in out
    for field in ("sign", "exponent", "mantissa"):
        assert field in out
    assert "(outside)" not in out


def test_flip_demo_bad_input_names_the_argument(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["flip-demo", "--p01", "2", "--elements", "10"])
    assert exc.value.code == 2
    assert "--p/--p01" in capsys.readouterr().err
