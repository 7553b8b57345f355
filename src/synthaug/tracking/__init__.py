"""Experiment tracking: a study's units and results in the tools study users already use.

:mod:`synthaug.tracking.mlflow` logs a study to MLflow (``synthaug study ... --track mlflow``,
extra ``synthaug[mlflow]``). Trackers read the study's records and files; the study knows
nothing of them (it calls ``on_unit_done``, the command line calls the tracker at the end).
"""
