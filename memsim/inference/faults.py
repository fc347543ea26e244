"""Persistent weight fault maps of binarized networks, and noisy binary activation writes.

Sits between a trained binarized network (its layers register through
:mod:`memsim.inference.binary`) and the noisy network (:class:`memsim.inference.network.NoisyNetwork`
installs a :class:`FaultMap` on its copy of the model for as long as that copy lives: one
draw per model load).

* **Weights** are programmed once into RRAM, one bit per cell (bit 1 = +1, bit 0 = −1), or
  one bit per differential 2T2R cell. A programming error is a *persistent* sign flip: a
  fault map is drawn once per model load from an explicit seed (:meth:`FaultMap.draw`) and
  applied on every forward pass. A stored −1 (bit 0) flips with ``p01``, a stored +1 (bit 1)
  with ``p10``; a 2T2R cell errs symmetrically with the device's ``p_2t2r`` (:func:`cell_rates`).
* **Coupled draws.** A fault map is one float64 uniform ``u`` per weight (seeded), and a
  weight flips when ``u < p(bit)``; so for one seed the faults at a smaller rate are a subset
  of those at a larger one (common random numbers across a BER grid and across networks of
  the same shape), while each rate still sees exact Bernoulli statistics.
* **Activations** written by registered binary activation modules go through any
  :class:`memsim.noise.channel.Channel` (e.g. ``policies.channels.BinaryChannel``) at the
  noisy network's write points, with fresh flips on every write (:func:`activation_channel`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from memsim.checks import check_probability
from memsim.inference.binary import binary_activations, binary_weight_layers
from memsim.noise.channel import Channel
from memsim.rng import generator

#: Cell types of the weight memory.
CELLS = ("1t1r", "2t2r")


def cell_rates(condition, cell: str = "1t1r", sigma_sa_ln: float = 0.0) -> tuple[float, float]:
    """``(p01, p10)`` of one stored weight bit programmed with a device condition.

    Parameters
    ----------
    condition : memsim.device.ProgrammingCondition
    cell : {"1t1r", "2t2r"}
        One cell per bit (the condition's ``p01``/``p10``) or a differential pair read by a
        sense amplifier (symmetric ``p_2t2r``).
    sigma_sa_ln : float
        Sense-amplifier offset in ln-R units (2T2R only: a 1T1R cell has no sense-amplifier
        pair, so a non-zero offset there is refused rather than ignored).
    """
    if cell not in CELLS:
        raise ValueError(f"The 'cell' parameter must be one of {', '.join(CELLS)}. Got {cell!r}.")
    check_sense_offset(cell, sigma_sa_ln)
    if cell == "2t2r":
        p = float(condition.p_2t2r(sigma_sa_ln))
        return p, p
    return float(condition.p01), float(condition.p10)


def check_sense_offset(cell: str, sigma_sa_ln: float, owner: str | None = None) -> None:
    """Refuse a non-zero ``sigma_sa_ln`` with a ``1t1r`` cell: only a 2T2R pair is read by a
    sense amplifier, so the offset would change nothing but the config's identity."""
    if cell == "1t1r" and sigma_sa_ln:
        of = f" of {owner}" if owner else ""
        raise ValueError(
            f"The 'sigma_sa_ln' parameter{of} ({sigma_sa_ln!r}) has no effect with cell = "
            '"1t1r": only a 2T2R cell is read by a sense amplifier; set cell = "2t2r" or '
            "leave sigma_sa_ln at 0."
        )


def weight_bits(model: nn.Module) -> dict[str, int]:
    """Stored weight bits of a BNN: ``{"bits", "ones", "zeros"}`` (ones = +1 weights)."""
    ones = total = 0
    for _, layer in binary_weight_layers(model):
        bits = layer.stored_bits()
        ones += int(bits.sum())
        total += bits.numel()
    return {"bits": total, "ones": ones, "zeros": total - ones}


def fault_uniforms(model: nn.Module, seed: int) -> dict[str, np.ndarray]:
    """One float64 uniform per binary weight, per layer (the coupled draw of a fault map)."""
    return {
        name: generator(seed, "bnn-faults", name).random(layer.weight.numel())
        for name, layer in binary_weight_layers(model)
    }


@dataclass(frozen=True)
class FaultMap:
    """A persistent sign-flip mask per binary-weight layer (True = the cell reads the wrong sign).

    Build one with :meth:`draw`; :class:`~memsim.inference.network.NoisyNetwork` installs it on
    its copy of the model (``fault_map=``), or :meth:`applied` installs it on a model for the
    duration of a ``with`` block. Indexing by layer name gives that layer's mask.

    Attributes
    ----------
    masks : mapping of str to bool Tensor
        Layer name → weight-shaped mask.
    p01, p10 : float
        The rates it was drawn at.
    seed : int
        The seed of its uniforms (same seed ⇒ nested maps across rates).
    """

    masks: Mapping[str, torch.Tensor] = field(default_factory=dict)
    p01: float = 0.0
    p10: float = 0.0
    seed: int = 0

    @classmethod
    def draw(
        cls,
        model: nn.Module,
        p01: float,
        p10: float | None = None,
        *,
        seed: int,
        uniforms: Mapping[str, np.ndarray] | None = None,
    ) -> FaultMap:
        """Draw the fault map of ``model``'s stored bits.

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
        uniforms : mapping, optional
            Precomputed :func:`fault_uniforms` for ``seed`` (saves work in sweeps).
        """
        p01 = check_probability("p01", p01)
        p10 = p01 if p10 is None else check_probability("p10", p10)
        uniforms = uniforms if uniforms is not None else fault_uniforms(model, seed)
        masks: dict[str, torch.Tensor] = {}
        for name, layer in binary_weight_layers(model):
            bits = layer.stored_bits().reshape(-1).cpu().numpy()
            u = uniforms[name]
            if u.shape != bits.shape:
                raise ValueError(
                    f"uniforms['{name}'] has {u.size} values; layer {name} has {bits.size} weights."
                )
            flip = u < np.where(bits == 1, p10, p01)
            masks[name] = torch.from_numpy(flip).reshape(layer.weight.shape)
        return cls(masks, p01, p10, int(seed))

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.masks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.masks)

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def faults(self) -> int:
        """Number of faulty cells."""
        return int(sum(int(m.sum()) for m in self.masks.values()))

    def install(self, model: nn.Module) -> None:
        """Set every binary-weight layer's ``fault_mask`` (layers not in the map: fault-free)."""
        layers = dict(binary_weight_layers(model))
        unknown = sorted(set(self.masks) - set(layers))
        if unknown:
            raise ValueError(f"Fault map names layers the model lacks: {', '.join(unknown)}.")
        for name, layer in layers.items():
            mask = self.masks.get(name)
            if mask is not None and tuple(mask.shape) != tuple(layer.weight.shape):
                raise ValueError(
                    f"Fault map of layer {name} has shape {tuple(mask.shape)}; "
                    f"its weight has shape {tuple(layer.weight.shape)}."
                )
            layer.fault_mask = mask

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Run ``model`` with this map installed (removed again on exit)."""
        try:
            self.install(model)
            yield model
        finally:
            clear_faults(model)


def clear_faults(model: nn.Module) -> None:
    """Remove any fault map from ``model``'s binary-weight layers."""
    for _, layer in binary_weight_layers(model):
        layer.fault_mask = None


def activation_channel(model: nn.Module, channel: Channel | None) -> Callable | None:
    """A per-write channel for :class:`NoisyNetwork`: ``channel`` on binary activation writes only.

    The noisy network draws fresh flips for every write (its seeding), so each forward pass
    sees new activation errors, unlike the persistent weight faults.
    """
    if channel is None or channel.is_noiseless:
        return None
    names = {name for name, _ in binary_activations(model)}

    def per_write(point) -> Channel | None:
        return channel if point.name.split("#")[0] in names else None

    return per_write
