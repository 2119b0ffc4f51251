"""Physical constants and defaults of the 2-D square-lattice Ising model (J = 1, k_B = 1)."""

import math

# Onsager (1944): sinh(2J/Tc) = 1, i.e. Tc = 2 / ln(1 + sqrt 2).
T_C: float = 2.0 / math.log1p(math.sqrt(2.0))

# Onsager: energy per site at Tc on the infinite lattice, u(Tc) = -sqrt(2) J.
U_C: float = -math.sqrt(2.0)

# Critical exponent of the spin two-point function, G(r) ~ r^-(d - 2 + eta), d = 2.
ETA: float = 0.25

# Amplitude of <s_0 s_r> ~ A r^(-1/4) at Tc, r the Euclidean distance in lattice spacings
# (Wu, McCoy, Tracy & Barouch, PRB 13, 316 (1976)). Along the diagonal <s_00 s_NN> ~
# 2^(1/12) exp(3 zeta'(-1)) N^(-1/4) and r = sqrt(2) N, so A = 2^(1/8 + 1/12) exp(3 zeta'(-1))
# = 0.7033801577...; zeta'(-1) = 1/12 - ln(Glaisher) = -0.16542114370045092.
CORRELATION_AMPLITUDE: float = 2.0 ** (1.0 / 8.0 + 1.0 / 12.0) * math.exp(
    3.0 * -0.16542114370045092
)

# Universal Binder cumulant U4* = 1 - <m^4>/(3<m^2>^2) at Tc on the periodic square
# lattice (Salas & Sokal, J. Stat. Phys. 98, 551 (2000)): 0.61069...
BINDER_CRITICAL: float = 0.61069

# Monte Carlo protocol defaults (isingscale.mc.thermalization; measurements in data/README.md).
# The SKILD paper (appendix F) thermalizes for 2,000 Wolff transitions: that is
# thermalize=2000 with unit "updates", enough at L = 128 and far too little at L = 256.
DEFAULT_THERMALIZE: str = "auto"  # until stationary, in L^2 flipped spins per chain
THERMALIZE_MIN: float = 16.0  # "auto" starts with this many L^2 flipped spins per chain ...
THERMALIZE_MAX: float = 4096.0  # ... and doubles the work while not stationary, up to this
STATIONARITY_Z: float = 3.5  # windows, and energy vs exact, agree within Z errors (4 tests)
STATIONARITY_MIN_RECORDS: int = 16  # fewer records per chain and window: too short to test
STATIONARITY_MIN_EFFECTIVE: float = 10.0  # ... and so are fewer independent samples per window
CALIBRATION_PRECISION: float = 0.05  # "auto" also waits for flips per update to +-5 % (1 se)
CALIBRATION_SIGMAS: float = 3.0  # saves are calibrated on flips per update f - 3 se_f
DEFAULT_DECORRELATE: float = 2.0  # target flipped spins between saves, in units of L^2
