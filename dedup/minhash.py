"""MinHash signatures of word 5-gram shingles, computed with numpy, and LSH banding.

Everything per document is vectorized: the text is normalized with two C-level string
operations, its UTF-8 bytes are split into words and hashed with a polynomial rolling hash
(prefix sums over the bytes, all in wrapping uint64 arithmetic: odd multipliers are invertible
modulo 2^64), shingles combine consecutive word hashes, and the 128 permutations are
multiply-add-shift hashes of the shingle hashes, reduced with a min over the shingles. No
Python call runs per word or per shingle.

The estimate of Jaccard similarity is the fraction of equal signature rows, as in datasketch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

_NON_WORD_RE = re.compile(r"[\W_]+")
_U64 = np.uint64
_BYTE_BASE = _U64(0x100000001B3)  # FNV-64 prime: odd, so invertible modulo 2^64
_WORD_BASE = _U64(0x9E3779B97F4A7C15)  # the golden-ratio constant, odd
_CHUNK = 4096  # shingles per block of the (shingles x permutations) product


def normalize_for_shingles(text: str) -> str:
    """Lower case, every run of non-word characters one space: punctuation, spacing and line
    breaks do not change the shingles."""
    return _NON_WORD_RE.sub(" ", text.lower()).strip()


@lru_cache(maxsize=8)
def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE^i and BASE^-i (mod 2^64) for i < n."""
    inverse = _U64(pow(int(_BYTE_BASE), -1, 1 << 64))
    with np.errstate(over="ignore"):
        up = np.cumprod(np.full(n, _BYTE_BASE, dtype=_U64))
        down = np.cumprod(np.full(n, inverse, dtype=_U64))
    up = np.concatenate(([_U64(1)], up[:-1]))
    down = np.concatenate(([_U64(1)], down[:-1]))
    return up, down


def _capacity(n: int) -> int:
    return 1 << max(10, (n - 1).bit_length())  # cache power tables in powers of two


def word_hashes(text: str) -> np.ndarray:
    """A 64-bit hash per word of the normalized text (uint64 array)."""
    data = np.frombuffer(normalize_for_shingles(text).encode("utf-8"), dtype=np.uint8)
    if data.size == 0:
        return np.zeros(0, dtype=_U64)
    up, down = _powers(_capacity(data.size + 1))
    is_space = data == 32
    values = data.astype(_U64) + _U64(1)
    with np.errstate(over="ignore"):
        # prefix[i] = sum_{j < i} value[j] * BASE^-j ; a word [s, e) hashes to
        # (prefix[e] - prefix[s]) * BASE^(e-1) = sum_j value[j] * BASE^(e-1-j).
        prefix = np.concatenate(([_U64(0)], np.cumsum(values * down[: data.size], dtype=_U64)))
        starts = np.flatnonzero(np.diff(np.concatenate(([True], is_space)).astype(np.int8)) == -1)
        ends = np.flatnonzero(np.diff(np.concatenate((is_space, [True])).astype(np.int8)) == 1) + 1
        hashes = (prefix[ends] - prefix[starts]) * up[ends - 1]
        # Mix in the length so that words differing only by trailing zero-valued bytes differ.
        hashes ^= (ends - starts).astype(_U64) * _WORD_BASE
    return hashes


def shingle_hashes(text: str, ngram: int = 5) -> np.ndarray:
    """Distinct 64-bit hashes of the word n-grams (a shorter text is one shingle)."""
    words = word_hashes(text)
    if words.size == 0:
        return words
    n = min(ngram, words.size)
    count = words.size - n + 1
    with np.errstate(over="ignore"):
        shingles = np.zeros(count, dtype=_U64)
        for k in range(n):
            shingles = shingles * _WORD_BASE + words[k : k + count]
    return np.unique(mix64(shingles))


def mix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: every input bit reaches every output bit, which the
    multiply-shift permutations below need to give unbiased minimums."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(33))
        x = x * _U64(0xFF51AFD7ED558CCD)
        x = x ^ (x >> _U64(33))
        x = x * _U64(0xC4CEB9FE1A85EC53)
        return x ^ (x >> _U64(33))


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers (odd) and increments of the multiply-add-shift hash family."""
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(1, 1 << 63, size=num_perm, dtype=np.uint64) * _U64(2) + _U64(1)
    b = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64)
    return a, b


def signature(shingles: np.ndarray, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """MinHash signature: for each permutation, the minimum 32-bit hash over the shingles."""
    a, b = permutations(num_perm, seed)
    out = np.full(num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
    with np.errstate(over="ignore"):
        for start in range(0, shingles.size, _CHUNK):
            block = shingles[start : start + _CHUNK, None]
            hashed = ((block * a + b) >> _U64(32)).astype(np.uint32)
            np.minimum(out, hashed.min(axis=0), out=out)
    return out


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / a.size


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted arrays of distinct shingle hashes."""
    if a.size == 0 and b.size == 0:
        return 1.0
    common = np.intersect1d(a, b, assume_unique=True).size
    return common / (a.size + b.size - common)


@dataclass(frozen=True)
class Banding:
    bands: int
    rows: int

    def band_rows(self, sig: np.ndarray) -> np.ndarray:
        """The signature's rows band by band ([bands, rows]): documents whose rows are
        equal in some band are candidates."""
        return sig[: self.bands * self.rows].reshape(self.bands, self.rows)

    def candidate_probability(self, jaccard: float) -> float:
        return 1.0 - (1.0 - jaccard**self.rows) ** self.bands


def choose_banding(threshold: float, num_perm: int, max_miss: float = 0.001) -> Banding:
    """Bands x rows for a threshold. Candidates are verified before they count, so a false
    positive costs one comparison while a false negative loses a duplicate: take the banding
    that misses a pair at exactly the threshold with probability at most `max_miss`, and among
    those the one that proposes the fewest pairs well below it (the false-positive area
    over [0, threshold - 0.1])."""
    best: tuple[float, Banding] | None = None
    grid = np.linspace(0.0, max(threshold - 0.1, 0.0), 200)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        banding = Banding(bands, rows)
        if 1.0 - banding.candidate_probability(threshold) > max_miss:
            continue
        area = float(np.trapezoid(1.0 - (1.0 - grid**rows) ** bands, grid))
        if best is None or area < best[0]:
            best = (area, banding)
    if best is None:  # nothing reaches max_miss: the most sensitive banding
        return Banding(num_perm, 1)
    return best[1]


def shared_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of the rows of a [n, width] array, those equal to at least one other: (their indices,
    a bucket number per index; equal rows share one). The buckets of one LSH band."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    whole = np.ascontiguousarray(rows)
    as_bytes = whole.view(np.dtype((np.void, whole.dtype.itemsize * whole.shape[1]))).ravel()
    _, inverse, counts = np.unique(as_bytes, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    members = np.flatnonzero(counts[inverse] > 1)
    return members, inverse[members]


def expected_misses(banding: Banding, jaccard: float) -> float:
    """Probability that a pair at this similarity never shares a band."""
    return 1.0 - banding.candidate_probability(jaccard)


__all__ = [
    "Banding",
    "choose_banding",
    "estimated_jaccard",
    "exact_jaccard",
    "expected_misses",
    "mix64",
    "normalize_for_shingles",
    "shared_rows",
    "shingle_hashes",
    "signature",
    "word_hashes",
]
