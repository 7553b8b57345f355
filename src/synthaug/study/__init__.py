"""Studies: real vs synthetic vs mixed training data, over sizes, methods and seeds.

>>> from synthaug.study import load_config, run_study
>>> from synthaug.report import build_report
>>> result = run_study(load_config("examples/fashion-mnist-ddpm.yaml"), "runs/fm")
>>> result.summary_markdown, build_report(result.run_dir)

Where things are:

- :mod:`~synthaug.study.config`: the YAML schema;
- :mod:`~synthaug.study.units`: the grid (regimes x sizes x backbones x methods x seeds);
- :mod:`~synthaug.study.data`: loading, generating and auditing the data, each unit's training set;
- :mod:`~synthaug.study.runner`: running one unit (:func:`~synthaug.study.runner.run_unit`)
  and the whole grid, resumably (:func:`~synthaug.study.runner.run_study`);
- :mod:`~synthaug.study.records`: the results as frozen records (``results.jsonl`` and
  ``analysis.json`` are their serialisation);
- :mod:`~synthaug.study.analysis`: the analysis, one module per step (groups, curves,
  comparisons, provenance, headline, summary), over :mod:`~synthaug.study.stats`.
"""

from synthaug.study.config import StudyConfig, load_config, parse_config
from synthaug.study.runner import StudyResult, run_study

__all__ = ["StudyConfig", "StudyResult", "load_config", "parse_config", "run_study"]
