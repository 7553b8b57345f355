"""Log a study to MLflow: one run per unit, nested under one run for the study.

What the store holds (experiment ``tracking.mlflow.experiment``, default ``synthaug``):

- **the study run** (named after the run folder, tagged with its path): the resolved config,
  ``environment.json``, ``analysis.json``, ``summary.md``/``summary.csv``, ``results.jsonl``
  and ``report.html`` as artefacts, and the Markdown summary (headline first) as its
  description;
- **one nested run per unit** (tag ``synthaug.unit_id``): the unit's group (regime, data,
  source, sizes, backbone, method) and seed, the method's hyper-parameters (``method.*``) and
  backbone options (``backbone.*``), the fingerprints of its training and validation data as
  parameters; its test and OOD metrics (``<ood set>/<metric>``) and timings; its training
  curves (``train_loss``, ``val_nll``, ``val_accuracy``, ``learning_rate`` per epoch,
  ``member_<i>/...`` for an ensemble); its model folder as the artefact ``model/``.

A unit is logged once: the runs already in the store are found by their tags, so rerunning a
study, resuming an interrupted one, or tracking one that first ran untracked logs only the
units not there yet. A unit whose logging was cut short (its run never finished) is deleted
and logged again.

Store: the ``uri`` given, else ``$MLFLOW_TRACKING_URI``, else a SQLite database
``mlruns/mlflow.db`` beside the run folder with the artefacts in ``mlruns/artifacts`` (MLflow 3
keeps the plain-file store in maintenance mode; SQLite needs no server). Open it with
``mlflow ui --backend-store-uri sqlite:///RUNS/mlruns/mlflow.db``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthaug.errors import ConfigError
from synthaug.fileio import sha256_bytes

if TYPE_CHECKING:
    from synthaug.study.config import StudyConfig
    from synthaug.study.records import UnitResult
    from synthaug.study.runner import StudyResult
    from synthaug.study.units import Unit

__all__ = ["DEFAULT_EXPERIMENT", "STORE_DIR", "MLflowTracker", "default_tracking_uri", "study_tracker"]

DEFAULT_EXPERIMENT = "synthaug"
STORE_DIR = "mlruns"
"""Folder beside the run folder that holds the default store."""

TAG_KIND = "synthaug.kind"  # "study" or "unit"
TAG_RUN_DIR = "synthaug.run_dir"  # the run folder's absolute path (shown in the UI)
TAG_RUN_DIR_KEY = "synthaug.run_dir_sha256"  # the same, hashed: safe inside a search filter
TAG_UNIT = "synthaug.unit_id"
TAG_GROUP = "synthaug.group_id"

CURVE_FIELDS = ("train_loss", "val_nll", "val_accuracy", "learning_rate")
"""Per-epoch fields of a training history logged as curves (step = epoch)."""

# MLflow's portable metric/parameter names: letters, digits, _ - . / and space.
_UNSAFE_NAME = re.compile(r"[^\w\-./ ]")


def default_tracking_uri(run_dir: str | os.PathLike[str]) -> str:
    """``$MLFLOW_TRACKING_URI``, else the SQLite store ``mlruns/mlflow.db`` beside ``run_dir``."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    return f"sqlite:///{Path(run_dir).resolve().parent / STORE_DIR / 'mlflow.db'}"


def metric_name(name: str) -> str:
    """``name`` as an MLflow metric name: an OOD metric ``noise:auroc`` becomes ``noise/auroc``."""
    return _UNSAFE_NAME.sub("_", name.replace(":", "/"))


def _import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError as error:
        raise ConfigError("tracking with MLflow needs it installed: pip install 'synthaug[mlflow]'") from error
    return mlflow


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MLflowTracker:
    """Logs the units and the outcome of one study (one run folder) to an MLflow store.

    Opening the tracker finds or creates the experiment and the study run, and reads which
    units the store already holds. Pass :meth:`log_unit` as ``run_study``'s ``on_unit_done``
    and call :meth:`log_study` with what ``run_study`` returned (and the report, once drawn).

    Args:
        run_dir: The study's run folder.
        uri: MLflow tracking URI; ``None``: :func:`default_tracking_uri`.
        experiment: Experiment name; ``None``: :data:`DEFAULT_EXPERIMENT`.

    Raises:
        ConfigError: MLflow is not installed.
    """

    def __init__(
        self, run_dir: str | os.PathLike[str], *, uri: str | None = None, experiment: str | None = None
    ) -> None:
        mlflow = _import_mlflow()
        self.run_dir = Path(run_dir).resolve()
        self.uri = uri or default_tracking_uri(self.run_dir)
        artifact_location = None
        if self.uri.startswith("sqlite:///"):
            # Artefacts beside the database, not in a folder of whatever the working directory is.
            store = Path(self.uri.removeprefix("sqlite:///")).parent
            store.mkdir(parents=True, exist_ok=True)
            artifact_location = (store / "artifacts").as_uri()
        self.client = mlflow.MlflowClient(tracking_uri=self.uri)
        name = experiment or DEFAULT_EXPERIMENT
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            self.experiment_id = self.client.create_experiment(name, artifact_location=artifact_location)
        self.study_run_id = self._study_run()
        self._units = self._logged_units()

    # -- finding what is there -----------------------------------------------------------

    def _search(self, filter_string: str) -> Iterable[Any]:
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string, max_results=1000, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def _study_run(self) -> str:
        from mlflow.entities import RunStatus

        key = sha256_bytes(str(self.run_dir).encode())
        runs = list(self._search(f"tags.`{TAG_KIND}` = 'study' and tags.`{TAG_RUN_DIR_KEY}` = '{key}'"))
        if runs:
            run_id = runs[0].info.run_id
            self.client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
            return run_id
        tags = {TAG_KIND: "study", TAG_RUN_DIR: str(self.run_dir), TAG_RUN_DIR_KEY: key}
        return self.client.create_run(self.experiment_id, run_name=self.run_dir.name, tags=tags).info.run_id

    def _logged_units(self) -> dict[str, str]:
        """Unit id -> run id of every unit run of this study that finished logging."""
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        logged = {}
        for run in self._search(f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.study_run_id}'"):
            unit_id = run.data.tags.get(TAG_UNIT)
            if run.info.status == "FINISHED" and unit_id is not None:
                logged[unit_id] = run.info.run_id
            else:  # cut short by a crash: log it again, from scratch
                self.client.delete_run(run.info.run_id)
        return logged

    @property
    def logged_units(self) -> dict[str, str]:
        """Unit id -> MLflow run id of every unit logged so far."""
        return dict(self._units)

    # -- logging -------------------------------------------------------------------------

    def log_unit(self, unit: Unit, result: UnitResult) -> None:
        """``run_study``'s ``on_unit_done``: log the unit that just finished (once)."""
        self.log_result(result)

    def log_result(self, result: UnitResult) -> None:
        """Log one unit's result as a run nested under the study run, unless already logged."""
        if result.unit_id in self._units:
            return
        from mlflow.entities import Metric
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        from synthaug.methods import load_method
        from synthaug.methods.base import RUNTIME_PARAMETERS

        model_dir = self._path(result.model_dir)
        method = load_method(model_dir, device="cpu")  # config and curves; no prediction runs
        fingerprints = json.loads((model_dir / "key.json").read_text()) if (model_dir / "key.json").is_file() else {}
        params = {
            **result.key.to_dict(),
            "seed": result.seed,
            "n_train": result.n_train,
            "model_key": result.model_key,
            "train_fingerprint": fingerprints.get("train"),
            "val_fingerprint": fingerprints.get("val"),
            **{
                f"method.{name}": value
                for name, value in method.get_params().items()
                if name not in RUNTIME_PARAMETERS
            },
            **{f"backbone.{name}": value for name, value in method.backbone_.get_config().items()},
        }
        now = int(time.time() * 1000)
        metrics = [Metric(metric_name(name), float(value), now, 0) for name, value in result.metrics.items()]
        metrics += [Metric(name, float(getattr(result, name)), now, 0)
                    for name in ("train_seconds", "predict_seconds", "unit_seconds")]
        histories = method.training_histories()
        for index, history in enumerate(histories):
            prefix = f"member_{index}/" if len(histories) > 1 else ""
            for record in history.epochs:
                metrics += [Metric(prefix + name, float(record[name]), now, int(record["epoch"]))
                            for name in CURVE_FIELDS if name in record]
        tags = {
            MLFLOW_PARENT_RUN_ID: self.study_run_id,
            TAG_KIND: "unit",
            TAG_UNIT: result.unit_id,
            TAG_GROUP: result.group_id,
            "synthaug.trained_in_this_run": str(result.trained).lower(),
        }
        run_id = self.client.create_run(self.experiment_id, run_name=result.unit_id, tags=tags).info.run_id
        self._log_params(run_id, params)
        for batch in _chunks(metrics, 1000):
            self.client.log_batch(run_id, metrics=batch)
        self.client.log_artifacts(run_id, str(model_dir), artifact_path="model")
        self.client.set_terminated(run_id)  # FINISHED last: a unit cut short before it is logged again
        self._units[result.unit_id] = run_id

    def log_study(self, result: StudyResult, report_path: str | os.PathLike[str] | None = None) -> None:
        """Log every unit not logged yet, the study's files and summary, and close the study run.

        Args:
            result: What ``run_study`` returned.
            report_path: ``report.html``, when it was drawn.
        """
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

        from synthaug.study.run_folder import RunFolder

        for unit_result in result.results:
            self.log_result(unit_result)
        files = RunFolder(self.run_dir).study_files()
        if report_path is not None:
            files.append(Path(report_path))
        for path in files:
            if path.is_file():
                self.client.log_artifact(self.study_run_id, str(path))
        headline = result.analysis.headline
        self.client.set_tag(self.study_run_id, MLFLOW_RUN_NOTE, result.summary_markdown)
        self._log_params(self.study_run_id, {"units": result.units_total, "question": headline.question})
        self.client.set_tag(self.study_run_id, "synthaug.answer", headline.answer)
        self.client.set_terminated(self.study_run_id)

    # -- helpers ---------------------------------------------------------------------------

    def _path(self, path: str) -> Path:
        """A path of a results row: absolute, or relative to the run folder."""
        resolved = Path(path)
        return resolved if resolved.is_absolute() else self.run_dir / resolved

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Log parameters (``None`` left out, values as JSON text when not plain), skipping
        those the run already holds: MLflow refuses to change a logged parameter."""
        from mlflow.entities import Param

        held = self.client.get_run(run_id).data.params
        items = []
        for name, value in params.items():
            if value is None:
                continue
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
            key = metric_name(name)
            if key not in held:
                items.append(Param(key, text[:6000]))
        for batch in _chunks(items, 100):
            self.client.log_batch(run_id, params=batch)


def study_tracker(
    config: StudyConfig, run_dir: str | os.PathLike[str], *, enabled: bool = False
) -> MLflowTracker | None:
    """The MLflow tracker a study asks for, or ``None``.

    Args:
        config: The study config; ``config.tracking.mlflow`` switches tracking on and gives
            the URI and experiment.
        run_dir: The study's run folder.
        enabled: Track even without ``config.tracking.mlflow`` (``--track mlflow``), with its
            settings when there are some and the defaults otherwise.
    """
    settings = config.tracking.mlflow
    if settings is None and not enabled:
        return None
    if settings is None:
        return MLflowTracker(run_dir)
    return MLflowTracker(run_dir, uri=settings.uri, experiment=settings.experiment)
