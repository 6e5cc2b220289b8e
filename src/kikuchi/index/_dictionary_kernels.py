"""numba kernels of dictionary indexing (private): normalisation of pattern vectors, running top-k, candidate scores."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def normalise_rows(x, centre):
    """Rows of ``x`` (n, m) float32 in place to mean 0 (when ``centre``) and unit norm; rows of norm 0 become zeros."""
    n, m = x.shape
    for i in range(n):
        mean = 0.0
        if centre:
            for j in range(m):
                mean += x[i, j]
            mean /= m
        ss = 0.0
        for j in range(m):
            v = x[i, j] - mean
            ss += v * v
        inv = 1.0 / np.sqrt(ss) if ss > 0.0 else 0.0
        for j in range(m):
            x[i, j] = (x[i, j] - mean) * inv


@numba.njit(nogil=True, cache=True)
def merge_top_k(scores, offset, best_s, best_i):
    """Fold a block of scores (n, b) (dictionary entries ``offset .. offset + b``) into the running top-k.

    ``best_s`` (n, k) is kept sorted in decreasing order, ``best_i`` (n, k)
    holds the dictionary indices; an entry replaces another only with a
    strictly higher score, so of equal scores the lowest index stays, and
    the result does not depend on how the dictionary is cut into blocks.
    """
    n, b = scores.shape
    k = best_s.shape[1]
    for i in range(n):
        floor = best_s[i, k - 1]
        for j in range(b):
            s = scores[i, j]
            if s > floor:
                p = k - 1
                while p > 0 and best_s[i, p - 1] < s:
                    best_s[i, p] = best_s[i, p - 1]
                    best_i[i, p] = best_i[i, p - 1]
                    p -= 1
                best_s[i, p] = s
                best_i[i, p] = offset + j
                floor = best_s[i, k - 1]


@numba.njit(nogil=True, cache=True, fastmath=True)
def candidate_scores(patterns, entries, where, out):
    """``out[i, j] = patterns[i] . entries[where[i, j]]``; where < 0 gives -inf.

    Summed in float32 vector lanes, as the exact mode's matrix products sum
    (float64 sums took 1.6x as long; the scores differ by about 1e-6).
    """
    n, k = where.shape
    m = patterns.shape[1]
    for i in range(n):
        for j in range(k):
            w = where[i, j]
            if w < 0:
                out[i, j] = -np.inf
                continue
            s = np.float32(0.0)
            for p in range(m):
                s += patterns[i, p] * entries[w, p]
            out[i, j] = s
