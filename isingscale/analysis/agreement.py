"""The one agreement statistic between two curves with errors.

z_i = (a_i - b_i) / sqrt(ea_i² + eb_i²) over the finite entries; summarised as χ²/dof =
mean z², the largest |z| and where it is. Every comparison in the package (``correlate``'s
report, the evaluation harness, the SKILD quality table, upsample's closing comparison)
uses this function.
"""

from __future__ import annotations

import numpy as np


def agreement(a, ea, b, eb=0.0) -> dict:
    """z = (a - b)/sqrt(ea² + eb²) over the finite entries: χ²/dof, max |z|, its index.

    Returns {"chi2_dof", "max_abs_z", "argmax" (index into a, None when no entry is
    finite), "dof" (finite entries), "z" (array like a, nan where undefined)}.
    """
    shape = np.shape(np.atleast_1d(a))
    a, ea, b, eb = (
        np.broadcast_to(np.atleast_1d(np.asarray(v, dtype=float)), shape) for v in (a, ea, b, eb)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (a - b) / np.sqrt(ea**2 + eb**2)
    ok = np.isfinite(z)
    if not ok.any():
        return {"chi2_dof": np.nan, "max_abs_z": np.nan, "argmax": None, "dof": 0, "z": z * np.nan}
    zz = np.where(ok, z, 0.0)
    i = int(np.argmax(np.abs(zz)))
    return {
        "chi2_dof": float(np.sum(zz**2) / ok.sum()),
        "max_abs_z": float(abs(zz[i])),
        "argmax": i,
        "dof": int(ok.sum()),
        "z": np.where(ok, z, np.nan),
    }
