"""The run folder: its file names in one place, binding to one study, the environment record."""

from __future__ import annotations

import pytest
import yaml

from synthaug.errors import ConfigError
from synthaug.study import parse_config
from synthaug.study.config import config_to_dict
from synthaug.study.run_folder import RunFolder

from helpers.tiny_study import tiny_config_data, write_tiny_folders


def test_the_folder_names_every_file_of_a_study(tmp_path):
    folder = RunFolder(str(tmp_path))
    names = [path.name for path in (folder.config, folder.environment, folder.results, folder.analysis,
                                    folder.summary_md, folder.summary_csv, folder.report, folder.inspect)]
    assert names == ["config.resolved.yaml", "environment.json", "results.jsonl", "analysis.json", "summary.md",
                     "summary.csv", "report.html", "inspect"]
    assert all(path.parent == tmp_path for path in (folder.config, folder.report, folder.inspect))


def test_binding_writes_the_config_once_then_refuses_another_study(tmp_path):
    folders = write_tiny_folders(tmp_path / "data")
    config = parse_config(tiny_config_data(folders))
    folder = RunFolder(tmp_path / "run")
    assert folder.saved_config() is None and folder.config_text() == ""
    folder.bind(config)
    assert yaml.safe_load(folder.config_text()) == config_to_dict(config)
    assert folder.saved_config() == config
    folder.bind(config)  # the same study again: resumes
    other = tiny_config_data(folders, seeds=[0, 7])
    with pytest.raises(ConfigError, match=r"first difference at `seeds\[1\]`"):
        folder.bind(parse_config(other))
    assert folder.cache(config) == tmp_path / "run" / "cache"
    assert folder.cache(parse_config(tiny_config_data(folders, cache_dir=str(tmp_path / "c")))) == tmp_path / "c"


def test_the_environment_record_round_trips_and_study_files_lists_what_exists(tmp_path):
    from synthaug.study.run_folder import environment_record

    folders = write_tiny_folders(tmp_path / "data")
    config = parse_config(tiny_config_data(folders))
    folder = RunFolder(tmp_path / "run")
    assert folder.read_environment() == {} and folder.study_files() == []
    folder.bind(config)
    record = environment_record(config, seconds=1.5)
    folder.write_environment(record)
    assert folder.read_environment() == record
    assert record["seeds"] == list(config.seeds) and "torch" in record["packages"]
    assert folder.study_files() == [folder.config, folder.environment]
