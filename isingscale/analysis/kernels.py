"""Numba kernels for lattice four-point products on bit-packed spins.

Only arrays and scalars in and out. Each row of an L x L lattice of +-1 spins is packed
into 64-bit words, bit x set where s(x, y) = -1. The product of spins is then the XOR of
their bits (an odd number of -1 factors is a set bit), so the lattice average of a product
of k shifted copies is ``1 - 2 popcount(XOR of shifted rows) / L^2``. A shift along y is a
row index; a shift along x is a rotation of the packed row, read out of a doubled copy.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

# Rows of the kernel's output, one per lattice-averaged product (index r along the last axis).
P4_SQUARE = 0  # s(x,y) s(x+r,y) s(x,y+r) s(x+r,y+r)
C_X = 1  # s(x,y) s(x+r,y)
C_Y = 2  # s(x,y) s(x,y+r)
C_DIAG = 3  # s(x,y) s(x+r,y+r)
C_ANTI = 4  # s(x+r,y) s(x,y+r)
P4_COLLINEAR_X = 5  # s(x,y) s(x+r,y) s(x+2r,y) s(x+3r,y)
P4_COLLINEAR_Y = 6  # s(x,y) s(x,y+r) s(x,y+2r) s(x,y+3r)
P4_RECT_X = 7  # r along x, 2r along y: s(x,y) s(x+r,y) s(x,y+2r) s(x+r,y+2r)
P4_RECT_Y = 8  # 2r along x, r along y: s(x,y) s(x+2r,y) s(x,y+r) s(x+2r,y+r)
N_PRODUCTS = 9


@intrinsic
def _popcount(typingctx, x):
    """LLVM ctpop on a uint64 (one POPCNT instruction on x86-64)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True, inline="always")
def _rotated(D, y, shift, k, L, W):
    """Word k of row y rotated so that bit x holds s(x + shift mod L, y); 0 <= shift < L."""
    b = shift + 64 * k
    q = b >> 6
    o = b & 63
    if o == 0:
        w = D[y, q]
    else:
        w = (D[y, q] >> np.uint64(o)) | (D[y, q + 1] << np.uint64(64 - o))
    if k == W - 1 and (L & 63) != 0:
        w &= (np.uint64(1) << np.uint64(L & 63)) - np.uint64(1)
    return w


@njit(cache=True)
def _pack_doubled(spins, D, L):
    """D[y] = bits of row y twice over (2L bits), bit set where the spin is negative."""
    D[:, :] = 0
    for y in range(L):
        for x in range(2 * L):
            if spins[y, x % L] < 0:
                D[y, x >> 6] |= np.uint64(1) << np.uint64(x & 63)


@njit(cache=True)
def _fill_rotation(D, R, shift, L, W):
    for y in range(L):
        for k in range(W):
            R[y, k] = _rotated(D, y, shift % L, k, L, W)


@njit(parallel=True, cache=True)
def lattice_products(spins, rmax, square, collinear, rectangle):
    """Per-sample lattice averages of the products listed at the top of this module.

    spins: (n, L, L) int8 of +-1, indexed [sample, y, x]. Returns (n, N_PRODUCTS, rmax + 1)
    float64; rows of shapes not asked for stay 0. Rows C_X ... C_ANTI come with ``square``.
    """
    n = spins.shape[0]
    L = spins.shape[1]
    W = (L + 63) // 64
    W2 = (2 * L + 63) // 64 + 1
    N = L * L
    out = np.zeros((n, N_PRODUCTS, rmax + 1))
    for i in prange(n):
        D = np.empty((L, W2), dtype=np.uint64)
        A = np.empty((L, W), dtype=np.uint64)
        R1 = np.empty((L, W), dtype=np.uint64)
        R2 = np.empty((L, W), dtype=np.uint64)
        R3 = np.empty((L, W), dtype=np.uint64)
        _pack_doubled(spins[i], D, L)
        _fill_rotation(D, A, 0, L, W)
        for r in range(rmax + 1):
            _fill_rotation(D, R1, r, L, W)
            if collinear or rectangle:
                _fill_rotation(D, R2, 2 * r, L, W)
            if collinear:
                _fill_rotation(D, R3, 3 * r, L, W)
            c = np.zeros(N_PRODUCTS, dtype=np.int64)
            for y in range(L):
                y1 = (y + r) % L
                y2 = (y + 2 * r) % L
                y3 = (y + 3 * r) % L
                for k in range(W):
                    t0 = A[y, k] ^ R1[y, k]  # s(x,y) s(x+r,y)
                    if square:
                        t1 = A[y1, k] ^ R1[y1, k]
                        c[P4_SQUARE] += _popcount(t0 ^ t1)
                        c[C_X] += _popcount(t0)
                        c[C_Y] += _popcount(A[y, k] ^ A[y1, k])
                        c[C_DIAG] += _popcount(A[y, k] ^ R1[y1, k])
                        c[C_ANTI] += _popcount(R1[y, k] ^ A[y1, k])
                    if collinear:
                        c[P4_COLLINEAR_X] += _popcount(t0 ^ R2[y, k] ^ R3[y, k])
                        c[P4_COLLINEAR_Y] += _popcount(A[y, k] ^ A[y1, k] ^ A[y2, k] ^ A[y3, k])
                    if rectangle:
                        c[P4_RECT_X] += _popcount(t0 ^ A[y2, k] ^ R1[y2, k])
                        c[P4_RECT_Y] += _popcount(A[y, k] ^ R2[y, k] ^ A[y1, k] ^ R2[y1, k])
            for q in range(N_PRODUCTS):
                out[i, q, r] = 1.0 - 2.0 * c[q] / N
    return out
