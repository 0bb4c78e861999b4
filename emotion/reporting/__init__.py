"""Reports over finished runs and sweeps.

- :mod:`emotion.reporting.runs`: read and validate run folders' ``metrics.json``.
- :mod:`emotion.reporting.table`: the comparison table as Markdown and CSV.
- :mod:`emotion.reporting.figures`: learning curves, per-class accuracy, confusion matrices.
- :mod:`emotion.reporting.sweep`: a Hydra callback that prints and saves a sweep's best trial.

The command line is :mod:`emotion.report`. Nothing is imported here, so that Hydra can load the
sweep callback without pulling in matplotlib.
"""

__all__ = ["figures", "runs", "sweep", "table"]
