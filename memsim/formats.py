"""Storage formats: bit widths, integer views and named bit fields.

Bit positions are numbered from the most significant bit, starting at 0 (docs/design.md §3): for
float32, position 0 is the sign, 1–8 the exponent and 9–31 the mantissa. A stored word is
reinterpreted as an unsigned integer of the same width; position ``k`` is the integer bit
``width - 1 - k``.

``resolve_bits(fmt, bits)`` turns every way a user can name noisy positions into a boolean mask
of length ``fmt.width``:

* ``None`` or ``"all"``: every position;
* a field name (``"sign"``, ``"exponent"``, ``"mantissa"``, ``"magnitude"``) or a list of them;
* ``FirstNoisy(k)`` or the string ``"first_noisy:k"``: positions ``k … width-1`` are noisy,
  ``0 … k-1`` protected;
* an iterable of positions (list, tuple, range) or a boolean mask of length ``width``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class StorageFormat:
    """One storage format and how its bits are laid out."""

    name: str
    width: int
    torch_dtype: torch.dtype | None
    int_view: torch.dtype | None  # same-width signed torch integer used for bit operations
    np_uint: np.dtype  # same-width unsigned NumPy type used by kernels
    is_float: bool
    fields: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def bytes_per_element(self) -> float:
        return self.width / 8

    @property
    def packed(self) -> bool:
        """Several codes share one stored byte (sub-byte integer formats such as int4)."""
        return (
            self.torch_dtype is None
            and self.width < 8
            and 8 % self.width == 0
            and self.name != "binary"
        )


def _float_fields(width: int, exponent: int) -> dict[str, tuple[int, ...]]:
    return {
        "sign": (0,),
        "exponent": tuple(range(1, 1 + exponent)),
        "mantissa": tuple(range(1 + exponent, width)),
    }


def _int_fields(width: int, signed: bool) -> dict[str, tuple[int, ...]]:
    if signed:
        return {"sign": (0,), "magnitude": tuple(range(1, width))}
    return {"magnitude": tuple(range(width))}


FORMATS: dict[str, StorageFormat] = {
    f.name: f
    for f in [
        StorageFormat(
            "float64",
            64,
            torch.float64,
            torch.int64,
            np.dtype(np.uint64),
            True,
            _float_fields(64, 11),
        ),
        StorageFormat(
            "float32",
            32,
            torch.float32,
            torch.int32,
            np.dtype(np.uint32),
            True,
            _float_fields(32, 8),
        ),
        StorageFormat(
            "float16",
            16,
            torch.float16,
            torch.int16,
            np.dtype(np.uint16),
            True,
            _float_fields(16, 5),
        ),
        StorageFormat(
            "bfloat16",
            16,
            torch.bfloat16,
            torch.int16,
            np.dtype(np.uint16),
            True,
            _float_fields(16, 8),
        ),
        # FP8 (Micikevicius et al., "FP8 Formats for Deep Learning", 2022): E4M3 has no
        # infinities and one NaN per sign (S.1111.111), so its largest value is 448; E5M2 follows
        # IEEE 754 (infinities and NaNs in the all-ones exponent), largest value 57344. Flips act
        # on the stored byte; reading it back follows torch's float8_e4m3fn / float8_e5m2.
        StorageFormat(
            "float8_e4m3",
            8,
            torch.float8_e4m3fn,
            torch.int8,
            np.dtype(np.uint8),
            True,
            _float_fields(8, 4),
        ),
        StorageFormat(
            "float8_e5m2",
            8,
            torch.float8_e5m2,
            torch.int8,
            np.dtype(np.uint8),
            True,
            _float_fields(8, 5),
        ),
        StorageFormat(
            "int8", 8, torch.int8, torch.int8, np.dtype(np.uint8), False, _int_fields(8, True)
        ),
        # Two 4-bit two's-complement codes per byte (first element in the high nibble): stored
        # tensors are packed uint8 (see memsim.inference.int8); no torch dtype of width 4.
        StorageFormat("int4", 4, None, None, np.dtype(np.uint8), False, _int_fields(4, True)),
        StorageFormat(
            "uint8", 8, torch.uint8, torch.uint8, np.dtype(np.uint8), False, _int_fields(8, False)
        ),
        StorageFormat(
            "int16", 16, torch.int16, torch.int16, np.dtype(np.uint16), False, _int_fields(16, True)
        ),
        StorageFormat(
            "int32", 32, torch.int32, torch.int32, np.dtype(np.uint32), False, _int_fields(32, True)
        ),
        StorageFormat(
            "int64", 64, torch.int64, torch.int64, np.dtype(np.uint64), False, _int_fields(64, True)
        ),
        # One bit per cell: +1/-1 values of binarized networks (bit 1 = +1). Handled by the
        # binary policy/workloads; there is no torch storage type of width 1.
        StorageFormat("binary", 1, None, None, np.dtype(np.uint8), False, {"sign": (0,)}),
    ]
}

#: Formats a network can store its activations in (docs/design.md §3).
ACTIVATION_FORMATS = (
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3",
    "float8_e5m2",
    "int8",
    "int4",
    "binary",
)

_BY_TORCH_DTYPE = {f.torch_dtype: f for f in FORMATS.values() if f.torch_dtype is not None}
_BY_NUMPY_DTYPE = {
    np.dtype(np.float64): FORMATS["float64"],
    np.dtype(np.float32): FORMATS["float32"],
    np.dtype(np.float16): FORMATS["float16"],
    np.dtype(np.int8): FORMATS["int8"],
    np.dtype(np.uint8): FORMATS["uint8"],
    np.dtype(np.int16): FORMATS["int16"],
    np.dtype(np.int32): FORMATS["int32"],
    np.dtype(np.int64): FORMATS["int64"],
}


def get_format(spec: str | torch.dtype | np.dtype | StorageFormat) -> StorageFormat:
    """The :class:`StorageFormat` for a name, torch dtype or NumPy dtype.

    Raises
    ------
    ValueError
        For an unknown name (the known ones are listed).
    TypeError
        For a dtype memsim cannot flip bits of (bool, complex, ...).
    """
    if isinstance(spec, StorageFormat):
        return spec
    if isinstance(spec, str):
        try:
            return FORMATS[spec]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(spec, list(FORMATS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"Unknown storage format '{spec}'.{hint} Known formats: {', '.join(FORMATS)}."
            ) from None
    if isinstance(spec, torch.dtype):
        if spec in _BY_TORCH_DTYPE:
            return _BY_TORCH_DTYPE[spec]
        raise TypeError(
            f"Unsupported dtype {spec}: bit flips are defined for "
            f"{', '.join(str(d) for d in _BY_TORCH_DTYPE)}."
        )
    try:
        dt = np.dtype(spec)
    except TypeError:
        raise TypeError(f"Cannot interpret {spec!r} as a storage format.") from None
    if dt in _BY_NUMPY_DTYPE:
        return _BY_NUMPY_DTYPE[dt]
    raise TypeError(
        f"Unsupported dtype {dt}: bit flips are defined for "
        f"{', '.join(str(d) for d in _BY_NUMPY_DTYPE)}."
    )


@dataclass(frozen=True)
class FirstNoisy:
    """Positions ``k … width-1`` are noisy; ``0 … k-1`` are protected (docs/design.md §3)."""

    k: int


def resolve_bits(fmt: str | StorageFormat, bits: object = None) -> np.ndarray:
    """Boolean mask (length ``width``, MSB-first) of the noisy bit positions.

    Parameters
    ----------
    fmt : str or StorageFormat
        The storage format the positions refer to.
    bits : None, str, FirstNoisy, iterable of int or of str, or bool array
        See the module docstring.

    Raises
    ------
    ValueError
        Positions out of range, unknown field names, a mask of the wrong length.
    TypeError
        A value of a type that does not name positions.
    """
    fmt = get_format(fmt)
    width = fmt.width
    mask = np.zeros(width, dtype=bool)
    if bits is None:
        mask[:] = True
        return mask
    if isinstance(bits, FirstNoisy) or (isinstance(bits, str) and bits.startswith("first_noisy:")):
        k = bits.k if isinstance(bits, FirstNoisy) else bits.split(":", 1)[1]
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise ValueError(f"bits: 'first noisy bit' must be an integer. Got {k!r}.") from None
        if not 0 <= k <= width:
            raise ValueError(
                f"bits: first noisy bit {k} is out of range for {fmt.name} (0 to {width})."
            )
        mask[k:] = True
        return mask
    if isinstance(bits, str):
        bits = [bits]
    if (
        isinstance(bits, np.ndarray)
        and bits.dtype == bool
        or (isinstance(bits, torch.Tensor) and bits.dtype == torch.bool)
    ):
        arr = np.asarray(bits.cpu() if isinstance(bits, torch.Tensor) else bits, dtype=bool)
        if arr.shape != (width,):
            raise ValueError(
                f"bits: a boolean mask for {fmt.name} must have length {width}. Got shape {arr.shape}."
            )
        return arr.copy()
    if isinstance(bits, int | np.integer) and not isinstance(bits, bool):
        raise TypeError(
            f"bits: got the single integer {bits}. Pass [{bits}] for one position or "
            f"FirstNoisy({bits}) / 'first_noisy:{bits}' to protect positions 0…{bits - 1}."
        )
    if not isinstance(bits, Iterable):
        raise TypeError(f"bits must name bit positions or fields. Got {bits!r}.")
    for item in bits:
        if isinstance(item, str):
            if item == "all":
                mask[:] = True
                continue
            if item not in fmt.fields:
                raise ValueError(
                    f"bits: unknown field '{item}' for {fmt.name}. "
                    f"Fields of {fmt.name}: {', '.join(fmt.fields)} (or 'all')."
                )
            mask[list(fmt.fields[item])] = True
        elif isinstance(item, int | np.integer) and not isinstance(item, bool):
            if not 0 <= item < width:
                raise ValueError(
                    f"bits: position {item} is out of range for {fmt.name} (0 to {width - 1}, "
                    "counted from the most significant bit)."
                )
            mask[int(item)] = True
        else:
            raise TypeError(f"bits: {item!r} is neither a bit position nor a field name.")
    return mask
