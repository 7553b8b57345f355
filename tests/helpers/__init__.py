"""Test helpers shared across test folders: tiny seeded real components built in code.

Importable as ``helpers.<module>`` because ``pyproject.toml`` puts ``tests/`` on ``sys.path``
(pytest's ``pythonpath`` option; the suite runs with ``--import-mode=importlib``, which adds
nothing to ``sys.path`` by itself). Worker processes of the execution tests import these
modules by name, so unit functions they run must live here, not in test modules.
"""
