"""Bit views of stored tensors: unsigned-integer words and bits by MSB-first position.

Where this sits: every piece of memsim that reads or flips the stored bits of a tensor (the
engines' glue in :mod:`memsim.noise.api` and :mod:`memsim.noise.numba_engine`, the channels of
``policies``, trace statistics in :mod:`memsim.trace.capture`) goes through these views, so
"position ``k``" means the same bit everywhere: position 0 is the most significant bit, and
position ``k`` of a ``width``-bit word is the integer bit ``width - 1 - k``
(:mod:`memsim.formats`).

* :func:`uint_words` reinterprets a CPU tensor as unsigned-integer NumPy words (shared memory);
* :func:`signed_numpy_dtype` is the same-width NumPy type torch can share buffers with;
* :func:`unpack_bits` spreads words into a 0/1 matrix, one column per position;
* :func:`read_bits` / :func:`position_masks` read single bits and build XOR masks;
* :class:`StoredBits` reads and flips ``(element, position)`` pairs of any tensor (also ±1
  tensors of the ``binary`` format, one bit per element), writing back to GPU or
  non-contiguous tensors;
* :func:`bit_statistics` counts ones per position (what a trace record keeps).
"""

from __future__ import annotations

import numpy as np
import torch

from memsim.formats import StorageFormat, get_format

__all__ = [
    "StoredBits",
    "bit_statistics",
    "int_view_dtype",
    "position_masks",
    "read_bits",
    "signed_numpy_dtype",
    "uint_words",
    "unpack_bits",
]


def int_view_dtype(fmt: StorageFormat) -> torch.dtype:
    """The same-width torch integer type a tensor of ``fmt`` is reinterpreted as."""
    if fmt.int_view is None:
        raise TypeError(f"The {fmt.name} format has no torch storage type to view as integers.")
    return fmt.int_view


def uint_words(x: torch.Tensor, fmt: StorageFormat) -> np.ndarray:
    """The stored words of a CPU tensor as unsigned integers of ``fmt``'s width (shared memory).

    ``x`` holds values of ``fmt`` or is already its integer view; it must be on the CPU and its
    elements must be laid out as a NumPy view allows (contiguous for a 1-D result).
    """
    if x.dtype in _NUMPY_DTYPES and x.element_size() * 8 == fmt.width and not x.requires_grad:
        # PERF: NumPy views directly (right after a layer every torch call is a cold one: ~8 us
        # a write in the network, against ~16 with a torch ``view`` first).
        return x.numpy().view(fmt.np_uint)
    int_view = int_view_dtype(fmt)
    ints = x if x.dtype == int_view else x.view(int_view)
    return ints.numpy().view(fmt.np_uint)


#: Tensor dtypes NumPy holds as they are (no torch reinterpretation needed first).
_NUMPY_DTYPES = (
    torch.float64, torch.float32, torch.float16, torch.uint8, torch.int8, torch.int16,
    torch.int32, torch.int64,
)  # fmt: skip


def signed_numpy_dtype(fmt: StorageFormat) -> np.dtype:
    """The same-width NumPy integer type whose arrays torch can wrap (``torch.from_numpy``)."""
    # torch has no uint16/32/64 arithmetic worth relying on: use signed views of the same width.
    return np.dtype(np.uint8) if fmt.name == "uint8" else np.dtype(f"int{fmt.width}")


def unpack_bits(words: np.ndarray) -> np.ndarray:
    """0/1 bits (uint8) of unsigned-integer ``words``, shape ``words.shape + (width,)``, MSB first."""
    words = np.asarray(words)
    width = words.dtype.itemsize * 8
    # Big-endian bytes put the MSB first, so unpackbits yields positions 0 … width-1.
    big = words.astype(words.dtype.newbyteorder(">"))
    bits = np.unpackbits(big.view(np.uint8).reshape(*words.shape, width // 8), axis=-1)
    return bits.reshape(*words.shape, width)


def read_bits(words: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Bit (0/1, uint8) at MSB-first position ``pos[i]`` of unsigned word ``words[i]``."""
    width = words.dtype.itemsize * 8
    shift = (width - 1 - np.asarray(pos)).astype(words.dtype)
    return ((words >> shift) & words.dtype.type(1)).astype(np.uint8)


def position_masks(pos: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Unsigned words of ``dtype`` with only the bit at MSB-first position ``pos[i]`` set."""
    dtype = np.dtype(dtype)
    width = dtype.itemsize * 8
    return dtype.type(1) << (width - 1 - np.asarray(pos)).astype(dtype)


class StoredBits:
    """Read and flip the stored bits of a tensor: element ``e``, bit position ``pos`` (MSB = 0).

    Works on a CPU NumPy view sharing memory with the tensor; other tensors (on a GPU, not
    contiguous, or ±1 values in a dtype NumPy lacks) go through a CPU copy that :meth:`flip`
    writes back. In the ``binary`` format each element is one bit: 1 for values >= 0 (+1).
    """

    def __init__(self, x: torch.Tensor, fmt: str | StorageFormat) -> None:
        self.x = x
        self.fmt = get_format(fmt)
        self.binary = self.fmt.name == "binary"
        work = x.detach()
        self.copied = work.device.type != "cpu" or not work.is_contiguous()
        if self.binary and work.dtype == torch.bfloat16:  # ±1 survive the round trip exactly
            work, self.copied = work.float(), True
        if self.copied:
            work = work.to("cpu").contiguous()
        self.work = work.reshape(-1)
        if self.binary:
            self.values = self.work.numpy()
        else:
            if x.dtype != self.fmt.torch_dtype:
                raise TypeError(
                    f"A {self.fmt.name} channel needs a {self.fmt.torch_dtype} tensor. Got {x.dtype}."
                )
            self.words = uint_words(self.work, self.fmt)

    @property
    def numel(self) -> int:
        return self.work.numel()

    def bit_matrix(self, positions: np.ndarray) -> np.ndarray:
        """Bits (0/1, uint8) at ``positions`` of every element, shape (numel, len(positions))."""
        if self.binary:
            return (self.values >= 0).astype(np.uint8)[:, None][:, positions]
        return unpack_bits(self.words)[:, positions]

    def read(self, elem: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Bits (0/1, uint8) at ``(elem[i], pos[i])``."""
        if self.binary:
            return (self.values[elem] >= 0).astype(np.uint8)
        return read_bits(self.words[elem], pos)

    def flip(self, elem: np.ndarray, pos: np.ndarray) -> None:
        """Flip each (element, position) pair once; pairs must be distinct."""
        if elem.size == 0:
            return
        if self.binary:
            bit = self.read(elem, pos)
            self.values[elem] = np.where(bit == 1, -1.0, 1.0).astype(self.values.dtype)
        else:
            # Several bits of one element may flip: accumulate the XOR masks per element.
            np.bitwise_xor.at(self.words, elem, position_masks(pos, self.fmt.np_uint))
        if self.copied:
            self.x.copy_(self.work.view(self.x.shape).to(self.x.device, self.x.dtype))


def bit_statistics(stored: torch.Tensor) -> tuple[tuple[float, ...], float]:
    """Fraction of ones per bit position (MSB first) and fraction of all-zero words.

    Parameters
    ----------
    stored : Tensor
        Stored words: a float tensor (its bit pattern is read) or integer codes.
    """
    fmt = get_format(stored.dtype)
    words = stored.detach().contiguous().view(int_view_dtype(fmt)).reshape(-1)
    n = max(words.numel(), 1)
    ones = []
    for k in range(fmt.width):
        # The arithmetic shift of signed views is harmless: only the lowest bit is kept.
        ones.append(float(((words >> (fmt.width - 1 - k)) & 1).sum()) / n)
    zero = float((words == 0).sum()) / n
    return tuple(ones), zero
