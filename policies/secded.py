"""The (72,64) Hsiao SECDED code: encoding, decoding and exact codeword corruption.

Used by the ``ecc_secded`` policy on both sides of the data flow (docs/design.md §5):

* accuracy side: :func:`corrupt_words` flips the bits of every 72-bit codeword that holds a
  tensor's RRAM bits and decodes the words that were hit, exactly as the hardware would
  (single errors corrected, double errors detected and left as stored, heavier errors may
  be miscorrected);
* cost side: :func:`check_bits` gives the 8 check bits written next to each 64-bit data word.

Bits are handled as ``uint8`` 0/1 matrices, one row per codeword (columns 0–63 data, MSB
first; 64–71 check bits), so that only the few words that got a flip are ever materialised.

The parity-check matrix is Hsiao's odd-weight-column construction (reference
docs/sources.md §7.3): the 56 weight-3 columns and 8 weight-5 columns (cyclic runs of
five rows) for the data bits, unit columns for the check bits. Every row has 26 data ones.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

import numpy as np

from memsim.noise.sampling import bernoulli_positions

DATA_BITS = 64
CHECK_BITS = 8
CODE_BITS = DATA_BITS + CHECK_BITS

#: Decoder outcomes, per codeword.
CLEAN, CORRECTED, DETECTED = 0, 1, 2


def _hsiao_columns() -> np.ndarray:
    """Syndrome (as an int 0–255) of each of the 72 code bit positions."""
    weight3 = [sum(1 << r for r in rows) for rows in combinations(range(CHECK_BITS), 3)]
    weight5 = [sum(1 << ((i + j) % CHECK_BITS) for j in range(5)) for i in range(CHECK_BITS)]
    unit = [1 << r for r in range(CHECK_BITS)]
    cols = np.array(weight3 + weight5 + unit, dtype=np.int64)
    if len(set(cols.tolist())) != CODE_BITS:  # construction invariant: distinct columns
        raise RuntimeError("Hsiao (72,64) construction produced repeated columns.")
    return cols


#: Syndrome of every code bit position (data 0–63, check 64–71).
COLUMN_SYNDROMES = _hsiao_columns()

#: Data part of the parity-check matrix as a (64, 8) 0/1 matrix: ``check = data @ H_DATA % 2``.
H_DATA = ((COLUMN_SYNDROMES[:DATA_BITS, None] >> np.arange(CHECK_BITS)) & 1).astype(np.uint8)

# Syndrome → code bit to correct (0–71), -1 for a zero syndrome, -2 for a detected error.
_SYNDROME_TABLE = np.full(1 << CHECK_BITS, -2, dtype=np.int64)
_SYNDROME_TABLE[0] = -1
_SYNDROME_TABLE[COLUMN_SYNDROMES] = np.arange(CODE_BITS)
_POWERS = (1 << np.arange(CHECK_BITS)).astype(np.int64)
# Row r of the parity-check matrix as a 64-bit mask over a data word packed MSB first.
_ROW_MASKS = np.array(
    [int("".join(str(b) for b in H_DATA[:, r]), 2) for r in range(CHECK_BITS)], dtype=np.uint64
)


def check_bits(data: np.ndarray) -> np.ndarray:
    """Check bits of data words.

    Parameters
    ----------
    data : ndarray of uint8, shape (n, 64)
        Data bits (0/1), MSB first.

    Returns
    -------
    ndarray of uint8, shape (n, 8)
    """
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != DATA_BITS:
        raise ValueError(f"data must have shape (n, {DATA_BITS}). Got {data.shape}.")
    # PERF: pack each word into one uint64 and take the parity of (word & row) by popcount:
    # eight vectorised passes instead of a (n, 64) x (64, 8) integer product.
    words = np.packbits(data.astype(np.uint8, copy=False), axis=1).view(">u8").reshape(-1)
    words = words.astype(np.uint64)
    out = np.empty((len(words), CHECK_BITS), dtype=np.uint8)
    for r in range(CHECK_BITS):
        out[:, r] = np.bitwise_count(words & _ROW_MASKS[r]) & 1
    return out


def encode(data: np.ndarray) -> np.ndarray:
    """Codewords (n, 72) from data words (n, 64)."""
    return np.concatenate([np.asarray(data, dtype=np.uint8), check_bits(data)], axis=1)


def syndromes(received: np.ndarray) -> np.ndarray:
    """Syndrome (int 0–255) of each received codeword (n, 72)."""
    received = np.asarray(received)
    parity = check_bits(received[:, :DATA_BITS]) ^ received[:, DATA_BITS:]
    return parity.astype(np.int64) @ _POWERS


def decode(received: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode received codewords.

    Parameters
    ----------
    received : ndarray of uint8, shape (n, 72)

    Returns
    -------
    data : ndarray of uint8, shape (n, 64)
        Data bits after correction: unchanged for a zero syndrome, one bit flipped when the
        syndrome matches a column (a check-bit column leaves the data alone), unchanged when
        the error is detected but not correctable.
    status : ndarray of int8, shape (n,)
        ``CLEAN``, ``CORRECTED`` or ``DETECTED`` per word.
    """
    received = np.asarray(received, dtype=np.uint8)
    target = _SYNDROME_TABLE[syndromes(received)]
    data = received[:, :DATA_BITS].copy()
    rows = np.flatnonzero((target >= 0) & (target < DATA_BITS))
    data[rows, target[rows]] ^= 1
    status = np.where(target == -1, CLEAN, np.where(target == -2, DETECTED, CORRECTED))
    return data, status.astype(np.int8)


def stream_words(stream: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Data words ``words`` (indices) of a bit stream, shape (n, 64); zero padding at the end."""
    stream = np.asarray(stream, dtype=np.uint8).reshape(-1)
    last_full = stream.size // DATA_BITS
    data = np.zeros((words.size, DATA_BITS), dtype=np.uint8)
    full = words < last_full
    data[full] = stream[: last_full * DATA_BITS].reshape(-1, DATA_BITS)[words[full]]
    if not full.all():  # the partial last word
        tail = stream[last_full * DATA_BITS :]
        data[~full, : tail.size] = tail
    return data


def corrupt_words(
    n_stream_bits: int,
    read_words: Callable[[np.ndarray], np.ndarray],
    p01: float,
    p10: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Flip, then decode, the codewords holding a stream of data bits; return the changed bits.

    The data stream of ``n_stream_bits`` bits is split into 64-bit words (the last one
    zero-padded), each stored with its 8 check bits. Every one of the 72 cells of every
    codeword flips independently (a stored 0 with ``p01``, a stored 1 with ``p10``); only the
    codewords that got at least one flip are read, encoded and decoded.

    Parameters
    ----------
    n_stream_bits : int
        Length of the data stream.
    read_words : callable
        ``read_words(word_indices) -> uint8 array (n, 64)``: the stored data bits (0/1) of the
        given words, MSB first, zero beyond the end of the stream.
    p01, p10 : float
        Per-cell flip probabilities (after any write-verify).
    rng : numpy Generator

    Returns
    -------
    ndarray of int64
        Sorted stream indices whose data bit differs after decoding (each to flip once).
    """
    n_words = -(-n_stream_bits // DATA_BITS)
    p_max = max(p01, p10)
    candidates = bernoulli_positions(rng, n_words * CODE_BITS, p_max)
    if candidates.size == 0:
        return np.empty(0, dtype=np.int64)
    words, inverse = np.unique(candidates // CODE_BITS, return_inverse=True)
    data = read_words(words)
    stored = encode(data)
    # Thinning: a candidate at a stored 0 is kept with p01/p_max, at a stored 1 with p10/p_max,
    # which turns the Bernoulli(p_max) candidates into exact per-direction Bernoulli flips.
    col = candidates % CODE_BITS
    bit = stored[inverse, col]
    keep_p = np.where(bit == 1, p10, p01) / p_max
    keep = rng.random(candidates.size) < keep_p
    received = stored.copy()
    received[inverse[keep], col[keep]] ^= 1
    decoded, _ = decode(received)
    rows, cols = np.nonzero(decoded != data)
    changed = words[rows] * DATA_BITS + cols
    return changed[changed < n_stream_bits]


def corrupt_stream(
    stream: np.ndarray, p01: float, p10: float, rng: np.random.Generator
) -> np.ndarray:
    """:func:`corrupt_words` for a stream given as a uint8 0/1 array."""
    stream = np.asarray(stream, dtype=np.uint8).reshape(-1)
    return corrupt_words(stream.size, lambda words: stream_words(stream, words), p01, p10, rng)
