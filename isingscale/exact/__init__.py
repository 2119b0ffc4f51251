"""Exact references for the 2-D square-lattice Ising model (J = 1, k_B = 1 by default).

- :mod:`.onsager`: infinite lattice, Onsager energy and specific heat, Yang's
  magnetisation, the McCoy-Wu diagonal correlation at Tc and its asymptote A r^(-1/4).
- :mod:`.kaufman`: the L x L torus, Kaufman's partition function (Ferdinand-Fisher form)
  and its exact energy and specific heat.
- :mod:`.enumeration`: all 2^(L^2) states of L <= 4 tori, an independent oracle.
- :mod:`.cft`: conformal-field-theory spin correlators on the torus and in the plane
  (Di Francesco, Saleur & Zuber 1987), normalised to the lattice amplitude A.
"""

from ..constants import BINDER_CRITICAL, CORRELATION_AMPLITUDE, ETA, T_C, U_C
from .cft import (
    four_point_positions,
    plane_g2,
    plane_g4c,
    plane_spin_correlator,
    torus_g2,
    torus_g4c,
    torus_spin_correlator,
)
from .enumeration import TorusEnumeration, enumerate_torus
from .kaufman import torus_energy, torus_log_partition, torus_specific_heat
from .onsager import (
    correlation_asymptote,
    diagonal_correlation,
    onsager_energy,
    onsager_magnetization,
    onsager_specific_heat,
)

__all__ = [
    "T_C",
    "U_C",
    "ETA",
    "CORRELATION_AMPLITUDE",
    "BINDER_CRITICAL",
    "onsager_energy",
    "onsager_specific_heat",
    "onsager_magnetization",
    "diagonal_correlation",
    "correlation_asymptote",
    "torus_log_partition",
    "torus_energy",
    "torus_specific_heat",
    "enumerate_torus",
    "TorusEnumeration",
    "torus_spin_correlator",
    "torus_g2",
    "torus_g4c",
    "plane_spin_correlator",
    "plane_g2",
    "plane_g4c",
    "four_point_positions",
]
