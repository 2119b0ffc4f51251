"""Which output sizes a network takes, and the stages that grow a lattice to a target size.

The network takes lattice sizes N that are multiples of ``2**depth`` (its pooling grid,
:meth:`isingscale.skild.unet.UNetConfig.check_size`). A stage by factor F from n x n makes
N = round(F n) (super-resolution of a Fourier-coarsened lattice whose n was rounded returns
to the fine size), which must be such a size; otherwise the error names the nearest factors
that work.
"""

from __future__ import annotations

import math

from ..errors import IsingScaleError


def output_size(n: int, factor: float, multiple: int) -> int:
    """N = round(factor x n) when it is a size the network takes (a multiple of
    ``multiple``), else a one-line :class:`IsingScaleError` naming the nearest working
    factors."""
    if not factor > 1:
        raise IsingScaleError(f"factor must be greater than 1, got {factor:g}")
    exact = factor * n
    N = int(round(exact))
    if N % multiple == 0 and N > n:
        return N
    what = f"{N}" if math.isclose(exact, N, abs_tol=1e-9) else f"{exact:.4g} (rounded: {N})"
    raise IsingScaleError(
        f"factor {factor:g} from L={n} gives {what}, not a size the network takes "
        f"(sizes divisible by {multiple}); nearest working factors: "
        f"{nearest_factors(n, exact, multiple)}"
    )


def nearest_factors(n: int, target: float, multiple: int) -> str:
    """ "F1 (N1), F2 (N2)": the factors from n to the sizes the network takes just below and
    just above ``target`` (only the one above when the one below is not larger than n)."""
    below = math.floor(target / multiple) * multiple
    above = math.ceil(target / multiple) * multiple
    if above == below:
        above += multiple
    sizes = [N for N in (below, above) if N > n] or [(n // multiple + 1) * multiple]
    return ", ".join(f"{factor_text(n, N)} ({N})" for N in sizes)


def factor_text(n: int, N: int) -> str:
    """N / n with enough digits that round(factor x n) gives N again."""
    return f"{N / n:.6g}"


def plan_stages(n: int, to: int, *, multiple: int, stage_factor: float = 2.0) -> list[int]:
    """[n, N1, ..., to]: the sizes after each stage growing n x n lattices to ``to``.

    Stages multiply by ``stage_factor`` (an octave by default) while that stays at or below
    ``to``; a size that is not a multiple of ``multiple`` is moved to the nearest one above
    the previous size. The last stage takes the remaining factor to ``to`` (between 1 and
    ``stage_factor``). ``to`` must be larger than n and a size the network takes.
    """
    if not stage_factor > 1:
        raise IsingScaleError(f"stage factor must be greater than 1, got {stage_factor:g}")
    if to <= n:
        raise IsingScaleError(
            f"--to {to} is not larger than the input size L={n}; grow needs a larger target"
        )
    if to % multiple:
        lo, hi = (to // multiple) * multiple, (to // multiple + 1) * multiple
        near = [str(N) for N in (lo, hi) if N > n]
        raise IsingScaleError(
            f"--to {to} is not a size the network takes (sizes divisible by {multiple}); "
            f"nearest working targets: {', '.join(near)}"
        )
    sizes = [n]
    while stage_factor * sizes[-1] <= to:
        nxt = max(round(stage_factor * sizes[-1] / multiple), 1) * multiple
        if nxt <= sizes[-1]:
            nxt = sizes[-1] + multiple
        if nxt >= to:
            break
        sizes.append(int(nxt))
    sizes.append(int(to))
    return sizes
