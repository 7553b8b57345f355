"""The study report: one self-contained HTML file drawn from a study's saved results.

>>> from synthaug.report import build_report
>>> build_report("runs/fashion-mnist")    # writes runs/fashion-mnist/report.html
"""

from synthaug.report.build import build_report

__all__ = ["build_report"]
