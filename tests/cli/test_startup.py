"""The command line answers at once: `--help` and a missing input never import torch & co.

`benchmarks/startup.py` measures the times; these tests check the cause of a slow start-up
(a heavy import on the way to the answer), which does not depend on how busy the machine is.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

# Modules that each cost from a tenth of a second to seconds (torch) to import. (pydantic is not
# listed: typer itself imports it to convert option values.)
HEAVY = ("torch", "torchvision", "matplotlib", "sklearn", "scipy", "jinja2", "safetensors", "mlflow")
MISSING = "/nonexistent/synthaug-startup-test"


def imported_after(argv: list[str]) -> tuple[int, list[str], str]:
    """Run the CLI with ``argv`` in a fresh interpreter; its exit code, the heavy modules it
    imported, and its stderr."""
    script = f"""
import json, sys
sys.argv = ["synthaug", *{argv!r}]
from synthaug.cli.main import main
try:
    main()
    code = 0
except SystemExit as exit:
    code = exit.code if isinstance(exit.code, int) else 1
heavy = sorted(name for name in {HEAVY!r} if name in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy}}))
"""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return result["code"], result["heavy"], completed.stderr


def test_importing_the_cli_imports_nothing_heavy() -> None:
    code, heavy, _ = imported_after(["--help"])
    assert code == 0 and heavy == []


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "audit", "filter", "generate", "train-generator",
                                     "datasets", "inspect", "study", "report", "demo"])
@pytest.mark.slow
def test_command_help_imports_nothing_heavy(command: str) -> None:
    code, heavy, _ = imported_after([command, "--help"])
    assert code == 0 and heavy == []


@pytest.mark.parametrize("argv", [
    ["train", "--train", MISSING, "--out", "/tmp/synthaug-startup-test"],
    ["predict", "--model", MISSING, "--data", "digits", "--out", "/tmp/synthaug-startup-test.npz"],
    ["evaluate", MISSING + ".npz", "--out", "/tmp/synthaug-startup-test"],
    ["audit", MISSING, "--out", "/tmp/synthaug-startup-test"],
    ["filter", MISSING, "--audit", MISSING, "--out", "/tmp/synthaug-startup-test"],
    ["train-generator", "--data", MISSING, "--out", "/tmp/synthaug-startup-test"],
], ids=lambda argv: argv[0])
@pytest.mark.slow
def test_a_missing_input_is_one_line_before_any_heavy_import(argv: list[str]) -> None:
    code, heavy, stderr = imported_after(argv)
    assert code == 1
    assert heavy == []
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and MISSING in lines[0]


def test_cli_defaults_repeated_for_start_up_match_the_library() -> None:
    from synthaug.audit.duplicates import DEFAULT_MIN_SIMILARITY
    from synthaug.audit.scores import LABEL_SCORES, SCORE_COMPONENTS
    from synthaug.cli import audit as audit_cli
    from synthaug.cli import train_generator as train_generator_cli
    from synthaug.generate.ddpm.train import GeneratorTrainingConfig
    from synthaug.generate.ddpm.unet import UNetConfig

    assert audit_cli.DEFAULT_MIN_SIMILARITY == DEFAULT_MIN_SIMILARITY
    assert audit_cli.LABEL_SCORES == LABEL_SCORES and audit_cli.SCORE_COMPONENTS == SCORE_COMPONENTS
    training = dataclasses.asdict(GeneratorTrainingConfig())
    expected = {name: training[name] for name in ("steps", "batch_size", "learning_rate", "seed", "checkpoint_every")}
    assert train_generator_cli.DEFAULTS == {**expected, "block_channels": UNetConfig().block_channels}
