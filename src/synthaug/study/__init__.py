"""Studies: real vs synthetic vs mixed training data, over sizes, methods and seeds.

>>> from synthaug.study import load_config, run_study
>>> result = run_study(load_config("examples/fashion-mnist-ddpm.yaml"), "runs/fm")
>>> result.report_path, result.summary_markdown

See :mod:`synthaug.study.config` for the YAML schema, :mod:`synthaug.study.runner` for how
the grid runs and resumes, :mod:`synthaug.study.stats` for the statistics.
"""

from synthaug.study.config import StudyConfig, load_config, parse_config
from synthaug.study.runner import StudyResult, run_study

__all__ = ["StudyConfig", "StudyResult", "load_config", "parse_config", "run_study"]
