"""The public API in ``memsim.__all__`` resolves, and importing memsim stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import memsim


@pytest.mark.parametrize("name", [n for n in memsim.__all__ if n != "__version__"])
def test_every_public_name_resolves(name):
    assert getattr(memsim, name) is not None


def test_all_lists_exactly_the_lazy_api():
    assert set(memsim.__all__) - {"__version__"} == set(memsim._API)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        memsim.no_such_thing  # noqa: B018


def test_flip_and_noisy_network_from_the_top_level():
    x = torch.zeros(10_000)
    y = memsim.flip(x, 0.5, bits="sign", seed=0)
    assert 4000 < int((y.view(torch.int32) != 0).sum()) < 6000
    assert memsim.NoisyNetwork.__name__ == "NoisyNetwork"


def test_import_memsim_does_not_import_torch():
    code = "import sys, memsim; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
