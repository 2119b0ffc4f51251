"""Numba kernels for lattice four-point products on bit-packed spins.

Only arrays and scalars in and out. :func:`lattice_products` and :func:`add_power` run on one
core and release the GIL, so callers spread them over threads (one chunk of lattices each):
numba's own thread pool (OpenMP) spins between calls, which costs CPU time on a busy machine.

Each row of an L x L lattice of +-1 spins is packed into 64-bit words, bit x set where
s(x, y) = -1. The product of spins is then the XOR of their bits (an odd number of -1 factors
is a set bit), so the lattice average of a product of k shifted copies is
``1 - 2 popcount(XOR of shifted rows) / L^2``. A shift along y is a row index; a shift along x
is a rotation of the packed row, read out of a doubled copy. The square's product is that of
two x-pairs a distance r apart along y, so one XOR row T = A ^ rot_r(A) per r serves it (and
the x-pair, rectangle and collinear terms).
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


@njit(cache=True)
def _pack_doubled(spins, D, L):
    """D[y] = bits of row y twice over (2L bits), bit set where the spin is negative."""
    W = (L + 63) // 64
    D[:, :] = 0
    off = L & 63
    for y in range(L):
        row = spins[y]
        for k in range(W):
            w = np.uint64(0)
            for b in range(min(64, L - 64 * k)):
                w |= np.uint64(row[64 * k + b] < 0) << np.uint64(b)
            D[y, k] |= w
            # The second copy starts at bit L: word W - 1 + k (or W + k when 64 | L) onwards.
            j = (L >> 6) + k
            D[y, j] |= w << np.uint64(off)
            if off:
                D[y, j + 1] |= w >> np.uint64(64 - off)


@njit(cache=True)
def _fill_rotation(D, R, shift, L, W):
    """R[y] = row y rotated by ``shift`` (any integer): bit x holds s(x + shift mod L, y).

    Every word of every row takes its bits from the same two words of the doubled row,
    so the loops carry no branch (and vectorise).
    """
    shift %= L
    q = shift >> 6
    o = np.uint64(shift & 63)
    if o == 0:
        for y in range(L):
            for k in range(W):
                R[y, k] = D[y, q + k]
    else:
        back = np.uint64(64) - o
        for y in range(L):
            for k in range(W):
                R[y, k] = (D[y, q + k] >> o) | (D[y, q + k + 1] << back)
    if L & 63:
        mask = (np.uint64(1) << np.uint64(L & 63)) - np.uint64(1)
        for y in range(L):
            R[y, W - 1] &= mask


@njit(cache=True)
def _fill_xor_rotation(A, D, T, shift, L, W):
    """T = A ^ (A rotated by ``shift``), as :func:`_fill_rotation` then XOR, in one pass."""
    q = shift >> 6
    o = np.uint64(shift & 63)
    if o == 0:
        for y in range(L):
            for k in range(W):
                T[y, k] = A[y, k] ^ D[y, q + k]
    else:
        back = np.uint64(64) - o
        for y in range(L):
            for k in range(W):
                T[y, k] = A[y, k] ^ ((D[y, q + k] >> o) | (D[y, q + k + 1] << back))
    if L & 63:
        mask = (np.uint64(1) << np.uint64(L & 63)) - np.uint64(1)
        for y in range(L):
            T[y, W - 1] &= mask


@njit(cache=True, inline="always")
def _shift(y, d, L):
    """(y + d) mod L for 0 <= y < L and 0 <= d."""
    y = y + d
    while y >= L:
        y -= L
    return y


@njit(cache=True)
def _square_count(T, r, L, W):
    """sum_y popcount(T[y] ^ T[y + r]) over the rows as one flat run of words (no modulo)."""
    Tf = T.ravel()
    n = L * W
    d = r * W
    c = 0
    for j in range(n - d):
        c += _popcount(Tf[j] ^ Tf[j + d])
    for j in range(n - d, n):
        c += _popcount(Tf[j] ^ Tf[j + d - n])
    return c


@njit(cache=True, nogil=True)
def lattice_products(spins, rmax, square, pairs, collinear, rectangle):
    """Per-sample lattice averages of the products listed at the top of this module.

    spins: (n, L, L) int8 of +-1, indexed [sample, y, x]; rmax < L. Returns
    (products (n, N_PRODUCTS, rmax + 1) float64, spin sums (n,) int64); rows not asked for
    stay 0. ``square``: P4_SQUARE; ``pairs``: C_X ... C_ANTI; ``collinear`` and
    ``rectangle``: their x and y rows.
    """
    n = spins.shape[0]
    L = spins.shape[1]
    W = (L + 63) // 64
    W2 = (2 * L + 63) // 64 + 1
    N = L * L
    out = np.zeros((n, N_PRODUCTS, rmax + 1))
    sums = np.zeros(n, dtype=np.int64)
    asked = np.zeros(N_PRODUCTS, dtype=np.bool_)
    asked[P4_SQUARE] = square
    asked[C_X : C_ANTI + 1] = pairs
    asked[P4_COLLINEAR_X : P4_COLLINEAR_Y + 1] = collinear
    asked[P4_RECT_X : P4_RECT_Y + 1] = rectangle
    D = np.empty((L, W2), dtype=np.uint64)
    A = np.empty((L, W), dtype=np.uint64)
    R1 = np.empty((L, W), dtype=np.uint64)
    R2 = np.empty((L, W), dtype=np.uint64)
    R3 = np.empty((L, W), dtype=np.uint64)
    T = np.empty((L, W), dtype=np.uint64)
    for i in range(n):
        _pack_doubled(spins[i], D, L)
        _fill_rotation(D, A, 0, L, W)
        down = 0
        for w in A.ravel():
            down += _popcount(w)
        sums[i] = N - 2 * down
        c = np.zeros(N_PRODUCTS, dtype=np.int64)
        for r in range(rmax + 1):
            if pairs:
                _fill_rotation(D, R1, r, L, W)
                np.bitwise_xor(A, R1, T)  # s(x,y) s(x+r,y)
            else:
                _fill_xor_rotation(A, D, T, r, L, W)
            c[:] = 0
            if square:
                c[P4_SQUARE] = _square_count(T, r, L, W)
            if pairs:
                _pair_counts(A, R1, T, r, L, W, c)
            if collinear or rectangle:
                _fill_rotation(D, R2, 2 * r, L, W)
            if collinear:
                _fill_rotation(D, R3, 3 * r, L, W)
                _collinear_counts(A, R2, R3, T, r, L, W, c)
            if rectangle:
                _rectangle_counts(A, R2, T, r, L, W, c)
            for q in range(N_PRODUCTS):
                if asked[q]:
                    out[i, q, r] = 1.0 - 2.0 * c[q] / N
    return out, sums


@njit(cache=True)
def _pair_counts(A, R1, T, r, L, W, c):
    for y in range(L):
        y1 = _shift(y, r, L)
        for k in range(W):
            c[C_X] += _popcount(T[y, k])
            c[C_Y] += _popcount(A[y, k] ^ A[y1, k])
            c[C_DIAG] += _popcount(A[y, k] ^ R1[y1, k])
            c[C_ANTI] += _popcount(R1[y, k] ^ A[y1, k])


@njit(cache=True)
def _collinear_counts(A, R2, R3, T, r, L, W, c):
    for y in range(L):
        y1 = _shift(y, r, L)
        y2 = _shift(y, 2 * r, L)
        y3 = _shift(y, 3 * r, L)
        for k in range(W):
            c[P4_COLLINEAR_X] += _popcount(T[y, k] ^ R2[y, k] ^ R3[y, k])
            c[P4_COLLINEAR_Y] += _popcount(A[y, k] ^ A[y1, k] ^ A[y2, k] ^ A[y3, k])


@njit(cache=True)
def _rectangle_counts(A, R2, T, r, L, W, c):
    for y in range(L):
        y1 = _shift(y, r, L)
        y2 = _shift(y, 2 * r, L)
        for k in range(W):
            c[P4_RECT_X] += _popcount(T[y, k] ^ T[y2, k])
            c[P4_RECT_Y] += _popcount(A[y, k] ^ R2[y, k] ^ A[y1, k] ^ R2[y1, k])


@njit(parallel=True, cache=True, nogil=True)
def shifted_products(spins, d):
    """Per-sample sums over sites of s(x,y) s(x+d,y), of s(x,y) s(x,y+d), and of s(x,y).

    spins: (n, L, L) int8, indexed [sample, y, x]; 0 <= d < L. Returns (n, 3) int64:
    exact integer sums (divide by L^2 for lattice averages).
    """
    n = spins.shape[0]
    L = spins.shape[1]
    out = np.zeros((n, 3), dtype=np.int64)
    for i in prange(n):
        s = spins[i]
        cx = 0
        cy = 0
        m = 0
        for y in range(L):
            row = s[y]
            below = s[_shift(y, d, L)]
            for x in range(L - d):
                cx += np.int64(row[x]) * row[x + d]
            for x in range(L - d, L):
                cx += np.int64(row[x]) * row[x + d - L]
            for x in range(L):
                cy += np.int64(row[x]) * below[x]
                m += row[x]
        out[i, 0] = cx
        out[i, 1] = cy
        out[i, 2] = m
    return out


@njit(cache=True, nogil=True)
def add_power(F, out):
    """out += sum_i |F[i]|^2 for complex F (n, a, b) and float64 out (a, b), in sample order."""
    for i in range(F.shape[0]):
        for y in range(F.shape[1]):
            for x in range(F.shape[2]):
                v = F[i, y, x]
                out[y, x] += v.real * v.real + v.imag * v.imag
