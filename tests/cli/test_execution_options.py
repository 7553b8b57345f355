"""The executor ``--workers``/``--ray`` ask for, for ``synthaug study`` and ``synthaug generate``."""

from __future__ import annotations

import pytest

from synthaug.cli._execution import executor_from_options, study_executor_from_options
from synthaug.errors import ConfigError
from synthaug.study import parse_config

CONFIG = {
    "real": {"train": "fashion-mnist:train[50000:]", "test": "fashion-mnist:test"},
    "regimes": [{"name": "real", "data": "real", "sizes": [10]}],
    "threads": 1,
}


def test_both_options_are_one_error_for_both_commands() -> None:
    config = parse_config(CONFIG)
    for make in (lambda: executor_from_options(2, "auto"), lambda: study_executor_from_options(config, 2, "auto")):
        with pytest.raises(ConfigError, match=r"^give either --workers \(this machine\) or --ray \(a cluster\)"):
            make()


def test_workers_win_over_the_config_and_keep_its_threads() -> None:
    config = parse_config({**CONFIG, "execution": {"workers": 3}})
    with study_executor_from_options(config, 1, None) as executor:
        assert executor.in_process  # --workers 1: everything in this process, whatever the config says
    with study_executor_from_options(config, None, None) as executor:
        assert not executor.in_process  # the config's 3 workers
    with executor_from_options(None, None, default_workers=1) as executor:
        assert executor.in_process


def test_fewer_than_one_worker_names_the_option() -> None:
    config = parse_config(CONFIG)
    for make in (lambda: executor_from_options(0, None), lambda: study_executor_from_options(config, -2, None)):
        with pytest.raises(ConfigError, match=r"^--workers -?\d: give 1 or more worker processes"):
            make()
