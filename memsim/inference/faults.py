"""Bit errors of binarized networks: persistent weight fault maps and noisy binary activations.

Sits between a trained BNN (:mod:`workloads.bnn`) and the study (:mod:`memsim.studies.bnn`).

* **Weights** are programmed once into RRAM, one bit per cell (bit 1 = +1, bit 0 = −1), or
  one bit per differential 2T2R cell. A programming error is a *persistent* sign flip: a
  fault map is drawn once per model load (:func:`draw_fault_map`) and applied on every
  forward pass (:func:`faults_applied`). A stored −1 (bit 0) flips with ``p01``, a stored +1
  (bit 1) with ``p10``; a 2T2R cell errs symmetrically with the device's ``p_2t2r``
  (:func:`cell_rates`).
* **Coupled draws.** A fault map is one float64 uniform ``u`` per weight (seeded), and a
  weight flips when ``u < p(bit)``; so for one seed the faults at a smaller rate are a subset
  of those at a larger one (common random numbers across a BER grid and across networks of
  the same shape), while each rate still sees exact Bernoulli statistics.
* **Activations** written by ``SignActivation`` modules can go through any
  :class:`memsim.noise.channel.Channel` (e.g. ``policies.channels.BinaryChannel``), with
  fresh flips on every write (:func:`activation_noise`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from memsim.noise.channel import Channel
from memsim.rng import child_seed, generator
from workloads.bnn_layers import SignActivation, binary_layers

#: Cell types of the weight memory.
CELLS = ("1t1r", "2t2r")

FaultMap = dict[str, torch.Tensor]


def _check_p(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"The '{name}' parameter must be a float in [0, 1]. Got {value!r}.")
    return value


def cell_rates(condition, cell: str = "1t1r", sigma_sa_ln: float = 0.0) -> tuple[float, float]:
    """``(p01, p10)`` of one stored weight bit programmed with a device condition.

    Parameters
    ----------
    condition : memsim.device.ProgrammingCondition
    cell : {"1t1r", "2t2r"}
        One cell per bit (the condition's ``p01``/``p10``) or a differential pair read by a
        sense amplifier (symmetric ``p_2t2r``).
    sigma_sa_ln : float
        Sense-amplifier offset in ln-R units (2T2R only).
    """
    if cell not in CELLS:
        raise ValueError(f"The 'cell' parameter must be one of {', '.join(CELLS)}. Got {cell!r}.")
    if cell == "2t2r":
        p = float(condition.p_2t2r(sigma_sa_ln))
        return p, p
    return float(condition.p01), float(condition.p10)


def weight_bits(model: nn.Module) -> dict[str, int]:
    """Stored weight bits of a BNN: ``{"bits", "ones", "zeros"}`` (ones = +1 weights)."""
    ones = total = 0
    for _, layer in binary_layers(model):
        bits = layer.stored_bits()
        ones += int(bits.sum())
        total += bits.numel()
    return {"bits": total, "ones": ones, "zeros": total - ones}


def fault_uniforms(model: nn.Module, seed: int) -> dict[str, np.ndarray]:
    """One float64 uniform per binary weight, per layer (the coupled draw of a fault map)."""
    return {
        name: generator(seed, "bnn-faults", name).random(layer.weight.numel())
        for name, layer in binary_layers(model)
    }


def draw_fault_map(
    model: nn.Module,
    p01: float,
    p10: float | None = None,
    *,
    seed: int,
    uniforms: dict[str, np.ndarray] | None = None,
) -> FaultMap:
    """A persistent sign-flip mask per binary layer (True = the cell reads the wrong sign).

    Parameters
    ----------
    model : nn.Module
        A BNN; its stored bits are the signs of the latent weights.
    p01 : float
        P(stored −1, bit 0, reads as +1).
    p10 : float, optional
        P(stored +1, bit 1, reads as −1); default ``p01``.
    seed : int
        Same seed ⇒ same uniforms ⇒ nested maps across rates (see the module docstring).
    uniforms : dict, optional
        Precomputed :func:`fault_uniforms` for ``seed`` (saves work in sweeps).
    """
    p01 = _check_p("p01", p01)
    p10 = p01 if p10 is None else _check_p("p10", p10)
    uniforms = uniforms if uniforms is not None else fault_uniforms(model, seed)
    faults: FaultMap = {}
    for name, layer in binary_layers(model):
        bits = layer.stored_bits().reshape(-1).numpy()
        u = uniforms[name]
        if u.shape != bits.shape:
            raise ValueError(
                f"uniforms['{name}'] has {u.size} values; layer {name} has {bits.size} weights."
            )
        flip = u < np.where(bits == 1, p10, p01)
        faults[name] = torch.from_numpy(flip).reshape(layer.weight.shape)
    return faults


@contextlib.contextmanager
def faults_applied(model: nn.Module, faults: FaultMap | None) -> Iterator[nn.Module]:
    """Run ``model`` with a fault map installed (removed again on exit)."""
    layers = dict(binary_layers(model))
    if faults:
        unknown = sorted(set(faults) - set(layers))
        if unknown:
            raise ValueError(f"Fault map names layers the model lacks: {', '.join(unknown)}.")
    try:
        for name, layer in layers.items():
            layer.fault_mask = None if not faults else faults.get(name)
        yield model
    finally:
        for layer in layers.values():
            layer.fault_mask = None


@contextlib.contextmanager
def activation_noise(model: nn.Module, channel: Channel | None, seed: int) -> Iterator[list[int]]:
    """Pass every binary activation write through ``channel`` (fresh flips per write).

    The seed of a write is ``child_seed(seed, module name, call number)``; the yielded list
    holds the call counter, so a caller can see how many writes happened.
    """
    counter = [0]
    if channel is None or channel.is_noiseless:
        yield counter
        return
    handles = []

    def hook(name: str):
        def write(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
            stored = out.detach().clone()
            channel.apply_(stored, child_seed(seed, "bnn-act", name, counter[0]))
            counter[0] += 1
            return out + (stored - out.detach())  # straight-through if ever trained through

        return write

    for name, m in model.named_modules():
        if isinstance(m, SignActivation):
            handles.append(m.register_forward_hook(hook(name)))
    try:
        yield counter
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def predict(
    model: nn.Module,
    x: torch.Tensor,
    *,
    faults: FaultMap | None = None,
    act_channel: Channel | None = None,
    seed: int = 0,
    batch_size: int = 500,
) -> torch.Tensor:
    """Logits of ``model`` on ``x`` with a weight fault map and noisy activation writes."""
    model.eval()
    out = []
    with faults_applied(model, faults), activation_noise(model, act_channel, seed):
        for i in range(0, len(x), batch_size):
            out.append(model(x[i : i + batch_size]))
    return torch.cat(out) if out else torch.empty(0)


def accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    **options,
) -> float:
    """Top-1 accuracy of :func:`predict` (same options)."""
    logits = predict(model, x, **options)
    return float((logits.argmax(1) == y).to(torch.float64).mean()) if len(y) else float("nan")
