"""Evaluation: every super-resolution method, and SKILD's own quality, against Monte Carlo.

One pipeline. Every comparison measures with :func:`measure_file` and compares with
:func:`compare_measured` (z per r with the combined standard error, summarised by
:func:`isingscale.analysis.agreement.agreement`) and judges with :func:`passes_bar`:

``comparison``     measure_file, compare_measured, passes_bar (the bar at the output size,
                   ``bar_for``), and ``compare(path, reference)`` for two files (what
                   ``isingscale upsample`` prints after writing its file)
``figures``        ``upsample_figure(path, truth)``: lattices and correlators against Monte
                   Carlo and the torus CFT (what ``isingscale upsample`` writes as a PNG)
``growth``         ``grow_report(stages, references={L: file})``: every stage of
                   :func:`isingscale.skild.grow` against Monte Carlo or the torus CFT
``references``     held-out Monte Carlo references and inputs, cached (seeds, splits)
``harness``        ``evaluate(out, factors=(2, 4, 8), methods=(...))``: a method × factor
                   table against independent Monte Carlo (evaluation.nc, report.md, plots/)
``methods``        the methods by name; :func:`register` adds one
``quality``        the SKILD quality table of a checkpoint (``analysis/skild_quality.py``)
``kernel_interp``  the kernel-interpolated CNN against native and repeated CNNs
``images``         image super-resolution scored against the originals (PSNR, SSIM, spectrum)
``cost``           what SKILD sampling costs: the whole commands side by side with a baseline
                   revision, and the network call (``isingscale bench skild``)
"""

from .comparison import Comparison, compare, compare_measured, measure_file, passes_bar
from .figures import correlator_figure, upsample_figure
from .growth import check_references, grow_markdown, grow_report, measure_growth
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
    "compare",
    "Comparison",
    "compare_measured",
    "measure_file",
    "passes_bar",
    "upsample_figure",
    "correlator_figure",
    "grow_report",
    "check_references",
    "grow_markdown",
    "measure_growth",
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
