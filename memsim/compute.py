"""The torch device computations run on: one parser and one availability check for every entry point.

``"cpu"`` (the default everywhere), ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"`` (CUDA when
present, else the CPU). A device this machine does not have is a ``ValueError`` naming it, raised
before anything is computed or written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: The default torch device of every verb and API function.
DEFAULT_DEVICE = "cpu"


def parse_device(device: str | torch.device) -> torch.device:
    """The ``torch.device`` that ``device`` names, whether or not this machine has it (``auto``
    names none: :func:`resolve_device` picks it).

    Raises
    ------
    ValueError
        Not a device name.
    """
    import torch

    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"The 'device' parameter must name a torch device (cpu, cuda, cuda:N, mps or auto). "
            f"Got {device!r}: {first}"
        ) from None


def resolve_device(device: str | torch.device = DEFAULT_DEVICE) -> torch.device:
    """The ``torch.device`` for ``device``, checked to exist on this machine.

    Raises
    ------
    ValueError
        Not a device name, or a device (CUDA, MPS, a CUDA index) this machine does not have.
    """
    import torch

    if isinstance(device, str) and device.strip() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = parse_device(device)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"Device {str(device)!r}: this machine has no CUDA GPU that torch can use; "
                "use --device cpu (or auto)."
            )
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"Device {str(device)!r}: this machine has {count} CUDA GPU(s) "
                f"(cuda:0 to cuda:{count - 1})."
            )
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"Device {str(device)!r}: MPS is not available on this machine.")
    elif dev.type != "cpu":
        raise ValueError(
            f"The 'device' parameter must be cpu, cuda, cuda:N, mps or auto. Got {device!r}."
        )
    return dev


def exact_float32() -> None:
    """Compute float32 on CUDA in IEEE float32, as on the CPU (process-wide).

    cuDNN convolutions default to TF32 on Ampere and later GPUs: float32 inputs rounded to a
    10-bit mantissa, which would blur exactly the mantissa flips memsim studies and make GPU
    results differ from CPU ones. The legacy flags are used: setting them is accepted whatever
    API set them before, and reading them stays consistent.
    """
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
