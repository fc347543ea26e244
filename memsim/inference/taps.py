"""Write points: where a network writes tensors to memory, found with forward hooks.

This is the first stage of the accuracy side (docs/design.md §2-§3): :class:`Taps` runs one forward
pass on an example batch, lists every tensor the network writes (a :class:`WritePoint` per
write, in execution order), and afterwards installs hooks that hand each written tensor to a
callback (noisy inference flips its bits, tracing measures them).

What counts as a write
----------------------
* Every call of a *leaf* module (one without children) whose output is a floating-point
  tensor is a write: convolution, batch norm, activation, pooling, linear, ... A module called
  twice in one forward (torchvision's ResNet blocks reuse ``relu``) gives two writes, named
  ``layer1.0.relu`` and ``layer1.0.relu#1``.
* Pure views and identities write nothing: ``Flatten``, ``Unflatten``, ``Identity``,
  ``Dropout*`` (in eval mode), and any module whose output aliases its input without being an
  in-place operation (``inplace=True`` modules such as ``ReLU(inplace=True)`` *do* write).
* Functional operations inside a non-leaf ``forward`` (the residual ``out += identity`` of a
  ResNet block, ``torch.flatten``, ``x.view``) are not modules and are not separate writes:
  they are part of the compute of the next leaf module, whose output is the write. So a
  ResNet block writes ``conv1, bn1, relu, conv2, bn2, relu#1`` (and ``downsample.0/1``); the
  sum is computed on the way into ``relu#1``.
* Outputs that are not floating tensors (tuples, integer tensors) are not writes.
* ``fused=True``: a chain conv→bn→activation (also linear→bn→act, conv→bn, conv→act), detected
  from execution order and data flow (each member consumes the previous member's output),
  is one write of the chain's last output. Its ``module_type`` joins the members'
  (``Conv2d+BatchNorm2d+ReLU``) and its ``ops`` add up. Functional in-place ops between
  members belong to the chain: in a ResNet block without downsampling, ``conv2→bn2→relu#1``
  fuses across the in-place residual add (one write of the block output); with a downsample
  branch running between ``bn2`` and ``relu#1`` the chain stops at ``bn2``.
* ``noisy_input=True``: the network input is write 0 (role ``input``).

The call sequence must be the same on every forward (static control flow); a model whose
sequence changes raises a clear error instead of mis-assigning writes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

#: Leaf modules that only reshape or pass their input through (no write).
VIEW_TYPES: tuple[type[nn.Module], ...] = (
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)

#: Layers with weights that start a conv/linear → norm → activation block (and get int8 weights).
WEIGHTED_LAYERS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)
_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_ACT_TYPES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
)
_POOL_TYPES = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
)


@dataclass(frozen=True)
class WritePoint:
    """One tensor written per forward pass.

    Attributes
    ----------
    index : int
        Position among the writes, in execution order, from 0.
    name : str
        Module name (``features.3``; ``relu#1`` for a module's second call), ``input``, or a
        parameter name (``features.0.weight``) for programming-time weight writes.
    module_type : str
        Class name of the producing module; members joined by ``+`` for fused chains.
    role : str
        ``activation``, ``input``, ``weight`` or ``bias``.
    shape : tuple of int
        Shape of the tensor for one input (batch dimension removed; full shape for parameters).
    ops : int
        Operations of the producing layer per input: MACs for convolution/linear, window
        reads for pooling, one per output element otherwise; 0 for the input and parameters.
    format : str
        Storage format the tensor is written in (filled in by the user of the taps).
    members : tuple of str
        Module calls whose compute produced this write (several for a fused chain).
    """

    index: int
    name: str
    module_type: str
    role: str
    shape: tuple[int, ...]
    ops: int = 0
    format: str = ""
    members: tuple[str, ...] = field(default=())

    @property
    def numel(self) -> int:
        """Elements written per input."""
        return math.prod(self.shape)


@dataclass
class _Call:
    """One leaf-module call seen during discovery."""

    key: tuple[str, int]
    module: nn.Module
    in_ptr: int | None
    out_ptr: int | None
    shape: tuple[int, ...]
    ops: int
    writes: bool


def _first_tensor(args: tuple) -> torch.Tensor | None:
    for a in args:
        if isinstance(a, torch.Tensor):
            return a
    return None


def _aliases(out: torch.Tensor, inp: torch.Tensor | None) -> bool:
    if inp is None:
        return False
    if out is inp:
        return True
    return out.untyped_storage().data_ptr() == inp.untyped_storage().data_ptr()


def _is_write(module: nn.Module, inp: torch.Tensor | None, out: object) -> bool:
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        return False
    if isinstance(module, VIEW_TYPES):
        return False
    # An output sharing its input's storage is a view unless the module computes in place.
    return not (_aliases(out, inp) and not getattr(module, "inplace", False))


def _ops_per_input(module: nn.Module, inp: torch.Tensor | None, out: torch.Tensor) -> int:
    batch = out.shape[0] if out.dim() > 0 else 1
    out_per = out.numel() // max(batch, 1)
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return out_per * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        in_per = inp.numel() // max(batch, 1) if inp is not None else 0
        return in_per * (module.out_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return out_per * module.in_features
    if isinstance(module, _POOL_TYPES):
        k = module.kernel_size
        return out_per * (math.prod(k) if isinstance(k, tuple) else k ** (out.dim() - 2))
    return out_per


def _call_name(key: tuple[str, int]) -> str:
    name, occurrence = key
    return name if occurrence == 0 else f"{name}#{occurrence}"


def _fuse(calls: list[_Call]) -> list[list[_Call]]:
    """Group the writing calls into chains head→norm→act (length 1 when not fusable)."""
    groups: list[list[_Call]] = []
    i = 0
    while i < len(calls):
        group = [calls[i]]
        if isinstance(calls[i].module, WEIGHTED_LAYERS):
            for kinds in (_NORM_TYPES, _ACT_TYPES):
                j = i + len(group)
                if (
                    j < len(calls)
                    and calls[j].writes
                    and isinstance(calls[j].module, kinds)
                    and calls[j].in_ptr is not None
                    and calls[j].in_ptr == group[-1].out_ptr
                ):
                    group.append(calls[j])
                elif kinds is _NORM_TYPES:
                    continue  # conv→act without a norm still fuses
                else:
                    break
        groups.append(group)
        i += len(group)
    return groups


class Taps:
    """The write points of a model, and hooks that act on them.

    Parameters
    ----------
    model : nn.Module
        The network (its modules are hooked, never edited).
    example : Tensor
        An example input batch (a couple of images is enough) used to discover the writes.
    fused : bool
        Treat conv→bn→activation chains as one write (see the module docstring).
    noisy_input : bool
        Mark the network input as written (write 0).
    fmt : str
        Storage format name recorded in each :class:`WritePoint`.
    """

    def __init__(
        self,
        model: nn.Module,
        example: torch.Tensor,
        *,
        fused: bool = False,
        noisy_input: bool = False,
        fmt: str = "",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module. Got {type(model).__name__}.")
        self.model = model
        self.fused = bool(fused)
        self.noisy_input = bool(noisy_input)
        #: Write-point granularity (``module`` or ``fused``); why ``op`` fell back, if it did.
        self.granularity = "fused" if self.fused else "module"
        self.fallback = ""
        self._leaves = [
            (n, m) for n, m in model.named_modules() if not any(True for _ in m.children())
        ]
        calls = self._discover(example)
        self.points, self._by_call = self._plan(calls, example, fmt)

    # ----------------------------------------------------------------- discovery
    def _discover(self, example: torch.Tensor) -> list[_Call]:
        calls: list[_Call] = []
        seen: dict[str, int] = {}

        def hook(name: str):
            def record(module: nn.Module, args: tuple, out: object) -> None:
                occurrence = seen.get(name, 0)
                seen[name] = occurrence + 1
                inp = _first_tensor(args)
                written = (
                    out if isinstance(out, torch.Tensor) and _is_write(module, inp, out) else None
                )
                calls.append(
                    _Call(
                        key=(name, occurrence),
                        module=module,
                        in_ptr=inp.data_ptr() if inp is not None else None,
                        out_ptr=out.data_ptr() if isinstance(out, torch.Tensor) else None,
                        shape=tuple(written.shape[1:]) if written is not None else (),
                        ops=_ops_per_input(module, inp, written) if written is not None else 0,
                        writes=written is not None,
                    )
                )

            return record

        handles = [m.register_forward_hook(hook(n)) for n, m in self._leaves]
        try:
            with torch.no_grad():
                self.model(example)
        finally:
            for h in handles:
                h.remove()
        return calls

    def _plan(
        self, calls: list[_Call], example: torch.Tensor, fmt: str
    ) -> tuple[tuple[WritePoint, ...], dict[tuple[str, int], WritePoint | None]]:
        points: list[WritePoint] = []
        by_call: dict[tuple[str, int], WritePoint | None] = {c.key: None for c in calls}
        if self.noisy_input:
            points.append(
                WritePoint(0, "input", "input", "input", tuple(example.shape[1:]), 0, fmt)
            )
        writing = [c for c in calls if c.writes]
        groups = _fuse(writing) if self.fused else [[c] for c in writing]
        for group in groups:
            last = group[-1]
            wp = WritePoint(
                index=len(points),
                name=_call_name(last.key),
                module_type="+".join(type(c.module).__name__ for c in group),
                role="activation",
                shape=last.shape,
                ops=sum(c.ops for c in group),
                format=fmt,
                members=tuple(_call_name(c.key) for c in group),
            )
            points.append(wp)
            by_call[last.key] = wp
        return tuple(points), by_call

    # ----------------------------------------------------------------- hooks
    @contextmanager
    def hooked(
        self, on_write: Callable[[WritePoint, torch.Tensor], torch.Tensor]
    ) -> Iterator[None]:
        """Within the block, every write calls ``on_write(point, tensor)``.

        ``on_write`` may change the tensor in place and return it, or return a replacement
        (which becomes the module's output, or the network input for the ``input`` write).
        """
        seen: dict[str, int] = {}
        by_call = self._by_call
        input_point = self.points[0] if self.noisy_input else None

        def start(module: nn.Module, args: tuple):
            seen.clear()
            if input_point is None or not args or not isinstance(args[0], torch.Tensor):
                return None
            return (on_write(input_point, args[0]), *args[1:])

        def hook(name: str):
            def tap(module: nn.Module, args: tuple, out: object):
                occurrence = seen.get(name, 0)
                seen[name] = occurrence + 1
                try:
                    wp = by_call[(name, occurrence)]
                except KeyError:
                    raise RuntimeError(
                        f"Module '{_call_name((name, occurrence))}' ran in this forward pass but "
                        "not when the write points were discovered; memsim needs the same "
                        "sequence of module calls on every forward (static control flow)."
                    ) from None
                if wp is None or not isinstance(out, torch.Tensor):
                    return None
                new = on_write(wp, out)
                return None if new is out else new

            return tap

        handles = [self.model.register_forward_pre_hook(start)]
        handles += [m.register_forward_hook(hook(n)) for n, m in self._leaves]
        try:
            yield
        finally:
            for h in handles:
                h.remove()


def parameter_points(
    model: nn.Module, fmt: str, *, start: int = 0
) -> list[tuple[WritePoint, nn.Parameter]]:
    """Programming-time write points: one per floating-point parameter, in registration order.

    Parameters whose name ends in ``bias`` get role ``bias``, others ``weight``.
    """
    modules = dict(model.named_modules())
    out: list[tuple[WritePoint, nn.Parameter]] = []
    for name, param in model.named_parameters():
        if not param.is_floating_point():
            continue
        owner = modules.get(name.rpartition(".")[0], model)
        role = "bias" if name.rpartition(".")[2].startswith("bias") else "weight"
        wp = WritePoint(
            start + len(out), name, type(owner).__name__, role, tuple(param.shape), 0, fmt, (name,)
        )
        out.append((wp, param))
    return out
