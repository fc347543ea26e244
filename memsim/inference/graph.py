"""Write points from the computation graph (``op`` granularity), and the granularity choice.

:mod:`memsim.inference.taps` finds writes with module hooks, so a tensor made by a functional
operation (a residual ``+``, ``torch.cat``, ``F.softmax``, ``q @ k.transpose(-2, -1)``) is never
written there: it is part of the compute of the next module. :class:`GraphTaps` captures the
network's graph with ``torch.fx`` symbolic tracing and makes *every operation that produces a
new floating-point tensor* a write, with the same :class:`WritePoint` / ``hooked`` interface as
:class:`memsim.inference.taps.Taps`, so noisy inference, tracing (and through it the memory
model) and int8 calibration use the same write points.

What counts as a write at ``op`` granularity
--------------------------------------------
* A call of a leaf module (torch's built-in layers stay leaves of the graph) writes under the
  rules of :mod:`memsim.inference.taps`: its name is the module's (``features.3``,
  ``relu#1`` for a second call), so module writes keep the names they have at ``module``
  granularity.
* A function or method call whose output is a floating tensor with its own storage is a write,
  named after the module whose ``forward`` runs it and the operation: ``layer1.0.add``,
  ``blocks.0.attn.softmax``, ``blocks.0.attn.matmul#1`` (second ``matmul`` there).
* Layout operations never write, even when they copy: views, ``reshape``, ``flatten``,
  ``permute``/``transpose``, ``contiguous``, ``expand``, indexing, ``chunk``/``split``,
  dtype or device casts, ``detach``/``clone`` and dropout (the network runs in eval mode, where
  dropout is the identity). Neither does any operation whose output shares its input's
  storage, unless it is an in-place computation (``x += y``, ``relu_``): that overwrites the
  stored tensor and is a write.
* ``noisy_input=True``: the network input is write 0, as with module hooks.

Capture: symbolic tracing needs static control flow. A model it cannot capture raises
:class:`GraphCaptureError`, whose message names the construct and the source line; with
``fallback=True``, :func:`make_taps` warns and falls back to module hooks, and the taps'
``granularity`` / ``fallback`` attributes say so (results and traces record them).

Granularities (:data:`GRANULARITIES`): ``module`` (module hooks, each leaf module call),
``op`` (this module), ``fused`` (this module's writes, with every conv/linear → norm →
activation chain written once, as an accelerator with fused kernels would).

What ``fused`` merges
---------------------
A chain starts at a convolution or linear layer (module or ``F.conv*``/``F.linear``) and
follows the data flow while each link's output has exactly one user: an optional
normalisation (batch, layer, group or instance norm), then an optional activation. A residual
sum between the norm and the activation (``act(bn(conv(x)) + shortcut)``, in place or not)
joins the chain when the activation follows it, as a fused conv-bn-add-relu kernel would; the
shortcut operand stays a write of its own. The chain is one write of its last output, named
after its last member, with ``module_type`` joining the members' kinds
(``Conv2d+BatchNorm2d+ReLU``) and their ``ops`` added up; everything else is written as at
``op`` granularity. On networks made of modules only (VGG) this is exactly the module-hook
chain fusion of :mod:`memsim.inference.taps`, which remains the fallback when a graph cannot
be captured.
"""

from __future__ import annotations

import operator
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.fx as fx
from torch import nn

from memsim.inference.taps import (
    _ACT_TYPES,
    _NORM_TYPES,
    WEIGHTED_LAYERS,
    Taps,
    WritePoint,
    _is_write,
    _ops_per_input,
)

#: Write-point granularities, coarsest last.
GRANULARITIES = ("module", "op", "fused")

_LAYOUT_FUNCTIONS = {
    torch.flatten,
    torch.reshape,
    torch.permute,
    torch.transpose,
    torch.swapaxes,
    torch.squeeze,
    torch.unsqueeze,
    torch.t,
    torch.narrow,
    torch.select,
    torch.chunk,
    torch.split,
    torch.unbind,
    torch.movedim,
    torch.clone,
    torch.detach,
    operator.getitem,
    nn.functional.dropout,
    nn.functional.dropout1d,
    nn.functional.dropout2d,
    nn.functional.dropout3d,
    nn.functional.alpha_dropout,
    nn.functional.feature_alpha_dropout,
}
_LAYOUT_METHODS = {
    "view",
    "view_as",
    "reshape",
    "reshape_as",
    "flatten",
    "unflatten",
    "permute",
    "transpose",
    "swapaxes",
    "t",
    "mT",
    "contiguous",
    "expand",
    "expand_as",
    "squeeze",
    "unsqueeze",
    "narrow",
    "select",
    "chunk",
    "split",
    "unbind",
    "movedim",
    "detach",
    "clone",
    "to",
    "type",
    "type_as",
    "float",
    "double",
    "half",
    "bfloat16",
    "cpu",
    "cuda",
}
_INPLACE_OPERATORS = {
    operator.iadd,
    operator.isub,
    operator.imul,
    operator.itruediv,
    operator.imatmul,
}
_MATMULS = {torch.matmul, operator.matmul, torch.bmm, torch.mm}
F = nn.functional
#: Fused-chain links given as functions or tensor methods (modules: the taps' type tuples).
_HEAD_FUNCTIONS = {F.conv1d, F.conv2d, F.conv3d, F.linear}
_NORM_FUNCTIONS = {F.batch_norm, F.layer_norm, F.group_norm, F.instance_norm}
_ACT_FUNCTIONS = {
    F.relu, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish,
    F.hardswish, F.hardsigmoid, F.hardtanh, F.softplus, torch.relu, torch.sigmoid, torch.tanh,
    F.sigmoid, F.tanh,
}  # fmt: skip
_ACT_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_"}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
_ADD_METHODS = {"add", "add_"}
#: Leaf modules that are norms in a fused chain (the taps' batch norms, and the others).
_NORM_MODULES = (*_NORM_TYPES, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)


class GraphCaptureError(RuntimeError):
    """``torch.fx`` could not capture a model's computation graph."""


def _user_frame(exc: BaseException) -> str:
    """``file:line `code``` of the innermost frame outside torch in ``exc``'s traceback."""
    torch_root = Path(torch.__file__).parent
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if torch_root in path.parents or path.name == "graph.py" and "memsim" in path.parts:
            continue
        found = f" at {frame.filename}:{frame.lineno} `{(frame.line or '').strip()}`"
    return found


def capture(model: nn.Module) -> fx.GraphModule:
    """The model's graph as an ``fx.GraphModule`` sharing the model's submodules.

    Raises
    ------
    GraphCaptureError
        Naming the model, the construct torch.fx refused and the source line.
    """
    try:
        tracer = fx.Tracer()
        graph = tracer.trace(model)
    except Exception as exc:  # torch.fx raises many types; each becomes one clear error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GraphCaptureError(
            f"Cannot capture the computation graph of {type(model).__name__} with torch.fx"
            f"{_user_frame(exc)}: {first} (op granularity needs static control flow; "
            "granularity='module' uses module hooks instead)."
        ) from exc
    return fx.GraphModule(tracer.root, graph)


def _op_name(node: fx.Node) -> str:
    target = node.target
    if isinstance(target, str):
        return target
    name = getattr(target, "__name__", str(target))
    return name.strip("_") or node.name


def _owner(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1]
    path = path[0] if isinstance(path, tuple) else path
    return path if isinstance(path, str) else ""


def _is_layout(node: fx.Node) -> bool:
    if node.op == "call_function":
        return node.target in _LAYOUT_FUNCTIONS
    if node.op == "call_method":
        return node.target in _LAYOUT_METHODS
    return False


def _is_inplace(node: fx.Node) -> bool:
    if node.op == "call_function":
        return node.target in _INPLACE_OPERATORS or bool(node.kwargs.get("inplace", False))
    if node.op == "call_method":
        target = node.target
        return isinstance(target, str) and target.endswith("_") and not target.startswith("_")
    return False


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _shares_storage(out: torch.Tensor, inputs: list[torch.Tensor]) -> bool:
    ptr = out.untyped_storage().data_ptr()
    return any(t.untyped_storage().data_ptr() == ptr for t in inputs)


class _Tap(nn.Module):
    """The node inserted after each write: hands the tensor to the current callback."""

    def __init__(self) -> None:
        super().__init__()
        self.points: tuple[WritePoint, ...] = ()
        self.callback: Callable[[WritePoint, torch.Tensor], torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, index: int) -> torch.Tensor:
        if self.callback is None:
            return x
        return self.callback(self.points[index], x)


class GraphTaps:
    """Write points of every tensor-producing operation (``op`` granularity).

    Parameters
    ----------
    model : nn.Module
        The network; its modules are shared with the captured graph, never edited.
    example : Tensor
        An example input batch, run once to find shapes, views and operation counts.
    noisy_input : bool
        Mark the network input as written (write 0).
    fmt : str
        Storage format name recorded in each :class:`WritePoint`.
    fused : bool
        Write conv/linear → norm → activation chains once (``fused`` granularity, see the
        module docstring).

    Raises
    ------
    GraphCaptureError
        The model cannot be captured by torch.fx.
    """

    fallback = ""

    def __init__(
        self,
        model: nn.Module,
        example: torch.Tensor,
        *,
        noisy_input: bool = False,
        fmt: str = "",
        fused: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module. Got {type(model).__name__}.")
        self.model = model
        self.fused = bool(fused)
        self.granularity = "fused" if self.fused else "op"
        self.noisy_input = bool(noisy_input)
        self._gm = capture(model)
        values = self._run_example(example)
        self.points, write_nodes = self._plan(values, example, fmt)
        self._tap = _Tap()
        self._tap.points = self.points
        self._gm.add_module("_memsim_tap", self._tap)
        self._insert_taps(write_nodes)

    # ----------------------------------------------------------------- discovery
    def _run_example(self, example: torch.Tensor) -> dict[fx.Node, object]:
        values: dict[fx.Node, object] = {}

        class Recorder(fx.Interpreter):
            def run_node(self, n: fx.Node) -> object:
                out = super().run_node(n)
                values[n] = out
                return out

        with torch.no_grad():
            Recorder(self._gm).run(example)
        return values

    def _plan(
        self, values: dict[fx.Node, object], example: torch.Tensor, fmt: str
    ) -> tuple[tuple[WritePoint, ...], list[tuple[fx.Node, int]]]:
        modules = dict(self._gm.named_modules())
        points: list[WritePoint] = []
        nodes: list[tuple[fx.Node, int]] = []
        seen: dict[str, int] = {}
        placeholders = [n for n in self._gm.graph.nodes if n.op == "placeholder"]
        if self.noisy_input:
            points.append(
                WritePoint(0, "input", "input", "input", tuple(example.shape[1:]), 0, fmt, ())
            )
            nodes.append((placeholders[0], 0))
        writes: dict[fx.Node, tuple[str, str, tuple[int, ...], int]] = {}
        for node in self._gm.graph.nodes:
            if node.op not in ("call_module", "call_function", "call_method"):
                continue
            out = values.get(node)
            inputs = [t for a in (node.args, node.kwargs) for t in _tensors(_lookup(a, values))]
            first = inputs[0] if inputs else None
            if node.op == "call_module":
                module = modules[node.target]
                if not isinstance(out, torch.Tensor) or not _is_write(module, first, out):
                    continue
                base, kind = node.target, type(module).__name__
                ops = _ops_per_input(module, first, out)
            else:
                if not isinstance(out, torch.Tensor) or not out.is_floating_point():
                    continue
                if _is_layout(node):
                    continue
                if _shares_storage(out, inputs) and not _is_inplace(node):
                    continue
                owner, op = _owner(node), _op_name(node)
                base, kind = (f"{owner}.{op}" if owner else op), op
                ops = _functional_ops(node, out, inputs)
            occurrence = seen.get(base, 0)
            seen[base] = occurrence + 1
            name = base if occurrence == 0 else f"{base}#{occurrence}"
            writes[node] = (name, kind, tuple(out.shape[1:]), ops)
        chains = _chains(list(writes), modules) if self.fused else [[n] for n in writes]
        for chain in chains:
            last = chain[-1]
            name, _, shape, _ = writes[last]
            wp = WritePoint(
                len(points),
                name,
                "+".join(writes[n][1] for n in chain),
                "activation",
                shape,
                sum(writes[n][3] for n in chain),
                fmt,
                tuple(writes[n][0] for n in chain),
            )
            points.append(wp)
            nodes.append((last, wp.index))
        return tuple(points), nodes

    def _insert_taps(self, write_nodes: list[tuple[fx.Node, int]]) -> None:
        graph = self._gm.graph
        for node, index in write_nodes:
            with graph.inserting_after(node):
                tap = graph.call_module("_memsim_tap", (node, index))

            def not_tap(user: fx.Node, tap: fx.Node = tap) -> bool:
                return user is not tap

            node.replace_all_uses_with(tap, delete_user_cb=not_tap)
        graph.lint()
        self._gm.recompile()

    # ----------------------------------------------------------------- hooks
    def _sync(self) -> None:
        """Point the graph module's own attributes at the model's current tensors.

        ``model.to(...)`` replaces buffers (and a dtype change, parameters). Modules the graph
        calls are the model's own objects, but a tensor read by a ``get_attr`` node is held by
        the graph module itself, at a dotted path under containers of its own (``inner.scale``
        of a submodule the trace went through): every such reference is re-pointed.
        """
        for node in self._gm.graph.nodes:
            if node.op != "get_attr":
                continue
            *path, name = node.target.split(".")
            owner, source = self._gm, self.model
            for part in path:
                owner, source = getattr(owner, part), getattr(source, part)
            setattr(owner, name, getattr(source, name))

    @contextmanager
    def hooked(
        self, on_write: Callable[[WritePoint, torch.Tensor], torch.Tensor]
    ) -> Iterator[None]:
        """Within the block, calling the model runs its captured graph, and every write calls
        ``on_write(point, tensor)`` (which may change the tensor in place and return it, or
        return a replacement that the rest of the graph uses)."""
        self._sync()
        self._tap.callback = on_write
        self.model.forward = self._gm.forward  # instance attribute: the class's is untouched
        try:
            yield
        finally:
            del self.model.forward
            self._tap.callback = None


def _link(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """The role of ``node`` in a fused chain: ``head``, ``norm``, ``add``, ``act`` or ``""``."""
    if node.op == "call_module":
        module = modules[str(node.target)]
        for role, types in (
            ("head", WEIGHTED_LAYERS),
            ("norm", _NORM_MODULES),
            ("act", _ACT_TYPES),
        ):
            if isinstance(module, types):
                return role
        return ""
    if node.op == "call_function":
        for role, functions in (
            ("head", _HEAD_FUNCTIONS),
            ("norm", _NORM_FUNCTIONS),
            ("add", _ADD_FUNCTIONS),
            ("act", _ACT_FUNCTIONS),
        ):
            if node.target in functions:
                return role
        return ""
    if node.op == "call_method":
        if node.target in _ADD_METHODS:
            return "add"
        return "act" if node.target in _ACT_METHODS else ""
    return ""


def _chains(writes: list[fx.Node], modules: dict[str, nn.Module]) -> list[list[fx.Node]]:
    """The writes grouped into fused chains head → [norm] → [add → act | act], in graph order.

    A link joins when it is the only user of the chain's last output, is itself a write and
    belongs to no earlier chain (of two branches meeting in a residual sum, the one whose head
    runs first takes the sum); a residual ``add`` joins only when an activation follows it.
    """
    is_write = set(writes)

    taken: set[fx.Node] = set()

    def sole_user(node: fx.Node) -> fx.Node | None:
        """The one user of ``node``'s output, if it is a write no earlier chain took."""
        users = list(node.users)
        if len(users) != 1 or users[0] not in is_write or users[0] in taken:
            return None
        return users[0]

    chains: list[list[fx.Node]] = []
    for node in writes:
        if node in taken:
            continue
        chain = [node]
        if _link(node, modules) == "head":
            nxt = sole_user(node)
            if nxt is not None and _link(nxt, modules) == "norm":
                chain.append(nxt)
                nxt = sole_user(nxt)
            if nxt is not None and _link(nxt, modules) == "add":
                act = sole_user(nxt)
                if act is not None and _link(act, modules) == "act":
                    chain += [nxt, act]
            elif nxt is not None and _link(nxt, modules) == "act":
                chain.append(nxt)
        taken.update(chain)
        chains.append(chain)
    # A chain is written where its last member runs: order the writes by that node.
    order = {n: i for i, n in enumerate(writes)}
    return sorted(chains, key=lambda c: order[c[-1]])


def _lookup(args: object, values: dict[fx.Node, object]) -> object:
    # map_arg is typed for graph arguments; here it puts run-time values in place of nodes.
    return fx.node.map_arg(args, lambda n: values.get(n))  # type: ignore[type-var, arg-type, return-value]


def _functional_ops(node: fx.Node, out: torch.Tensor, inputs: list[torch.Tensor]) -> int:
    """Operations per input of a functional write: MACs for a matrix product, else one per
    output element."""
    batch = out.shape[0] if out.dim() > 0 else 1
    out_per = out.numel() // max(batch, 1)
    if node.target in _MATMULS or node.target in ("matmul", "bmm", "mm", "__matmul__"):
        if inputs and inputs[0].dim() > 0:
            return out_per * int(inputs[0].shape[-1])
    return out_per


def make_taps(
    model: nn.Module,
    example: torch.Tensor,
    granularity: str = "module",
    *,
    noisy_input: bool = False,
    fmt: str = "",
    fallback: bool = True,
) -> Taps | GraphTaps:
    """Write points of ``model`` at ``granularity`` (one of :data:`GRANULARITIES`).

    ``op`` and ``fused`` capture the graph. With ``fallback=True`` a model that torch.fx cannot
    capture gets module hooks instead (``op`` → ``module``, ``fused`` → module-hook chain
    fusion), with a ``RuntimeWarning``; the result's ``granularity`` then names the hooks' and
    its ``fallback`` holds the reason. With ``fallback=False`` the :class:`GraphCaptureError`
    propagates.
    """
    check_granularity(granularity)
    fused = granularity == "fused"
    if granularity == "module":
        return Taps(model, example, noisy_input=noisy_input, fmt=fmt)
    try:
        return GraphTaps(model, example, noisy_input=noisy_input, fmt=fmt, fused=fused)
    except GraphCaptureError as exc:
        if not fallback:
            raise
        hooks = "module-hook chain fusion" if fused else "module granularity"
        warnings.warn(
            f"{exc} Falling back to module hooks ({hooks}).", RuntimeWarning, stacklevel=2
        )
        taps = Taps(model, example, fused=fused, noisy_input=noisy_input, fmt=fmt)
        taps.fallback = str(exc)
        return taps


def check_granularity(granularity: object) -> str:
    """``granularity`` if it names one of :data:`GRANULARITIES`, else a ValueError naming it."""
    if granularity not in GRANULARITIES:
        raise ValueError(
            f"granularity must be one of {', '.join(GRANULARITIES)}. Got {granularity!r}."
        )
    return granularity


def per_kind(points: tuple[WritePoint, ...]) -> dict[str, int]:
    """Written elements per input, summed by kind of write (``module_type``)."""
    out: dict[str, int] = {}
    for wp in points:
        if wp.role in ("activation", "input"):
            out[wp.module_type] = out.get(wp.module_type, 0) + wp.numel
    return out


__all__ = [
    "GRANULARITIES",
    "GraphCaptureError",
    "GraphTaps",
    "capture",
    "check_granularity",
    "make_taps",
    "per_kind",
]
