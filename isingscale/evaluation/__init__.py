"""Evaluation harness: every super-resolution method at every factor against Monte Carlo.

``evaluate(out, factors=(2, 4, 8), methods=("skild", "nearest", ...))`` simulates (or reads)
two independent ground-truth ensembles, coarse-grains the inputs with both conventions, runs
every method, measures G2, square G4c, energy, |m|, Binder U4 and S(k) of each output with
jackknife errors, and writes DIR/evaluation.nc, DIR/plots/ and DIR/report.md (a method ×
factor table of agreement and cost). Methods live in :mod:`isingscale.evaluation.methods`;
:func:`register` adds one.
"""

from .harness import Evaluation, evaluate, open_evaluation
from .methods import (
    CONVENTIONS,
    Method,
    NotAvailable,
    Options,
    Prepared,
    method_names,
    register,
    unregister,
)
from .plan import DEFAULT_FACTORS, DEFAULT_METHODS
from .report import report_markdown, summary
from .results import part_metrics

__all__ = [
    "evaluate",
    "Evaluation",
    "open_evaluation",
    "register",
    "unregister",
    "method_names",
    "Method",
    "Prepared",
    "Options",
    "NotAvailable",
    "CONVENTIONS",
    "DEFAULT_METHODS",
    "DEFAULT_FACTORS",
    "report_markdown",
    "summary",
    "part_metrics",
]
