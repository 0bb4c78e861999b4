"""Reports over finished runs and sweeps.

- :mod:`emotion.reporting.runs`: read and validate run folders' ``metrics.json``.
- :mod:`emotion.reporting.table`: the comparison table as Markdown and CSV.
- :mod:`emotion.reporting.figures`: learning curves, per-class accuracy, confusion matrices.
- :mod:`emotion.reporting.record`: the ``metrics.json`` record that training and evaluation write.

The command line is :mod:`emotion.report`. Nothing is imported here, so that reading a record
does not pull in matplotlib.
"""

__all__ = ["figures", "record", "runs", "table"]
