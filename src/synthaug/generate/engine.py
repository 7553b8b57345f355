"""The generation engine: plan image requests, hand them to a backend, commit each result.

A run is a set of independent image slots ``(label, index)``, ``index < per_class``. Each
slot becomes an :class:`~synthaug.generate.backends.base.ImageRequest` whose prompt and
seed are derived deterministically from the run seed, the label, the index and the
attempt number, so any slot can be (re)generated anywhere, in any order, with the same
result. The engine:

1. checks the output folder: a folder written with other settings is refused unless
   ``extend=True``; the run's settings are stored in ``DIR/generation.json``;
2. resumes: keeps only manifest rows whose file exists with the recorded sha256, removes
   its own temporary files, and reads ``DIR/rejected.jsonl`` so that a refused prompt is
   never sent again;
3. feeds the missing slots to the backend, affordable ones only when ``max_cost`` is set,
   and commits each image as it arrives (see :mod:`synthaug.generate.manifest`); a refused
   slot moves on to its next prompt variant, up to ``max_attempts`` tries.

Only committed images count, so a run killed at any point is resumed by running it again.

With an executor of several workers (:mod:`synthaug.execution`), step 3 runs in shards on
the workers, each committing into its own shard manifest, which this process merges as each
shard finishes (:mod:`synthaug.generate.shards`, ``docs/scaling.md``). The cost cap and the
re-planning of refused slots stay here, on the driver.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import synthaug
from synthaug.errors import ConfigError, GenerationError
from synthaug.execution import Executor, Reserver, Resources, worker_state
from synthaug.generate.backends import (
    GeneratedImage,
    GeneratorBackend,
    ImageRequest,
    RejectedRequest,
    make_backend,
)
from synthaug.generate.manifest import (
    CONFIG_NAME,
    LOCK_NAME,
    MANIFEST_NAME,
    REJECTED_NAME,
    TEMP_PREFIX,
    JsonlAppender,
    atomic_write_bytes,
    directory_lock,
    fsync_directory,
    read_jsonl,
    remove_temp_files,
    rewrite_jsonl,
    scan_manifest,
)
from synthaug.generate.prompts import DEFAULT_TEMPLATE, PromptSpec
from synthaug.generate.shards import (
    committed_in_shard,
    merge_shards,
    remove_manifests_dir,
    shard_paths,
    unmerged,
    worker_name,
)
from synthaug.generate.slug import class_folders
from synthaug.progress import ProgressCallback, report

if TYPE_CHECKING:  # guided reads datasets (torch); the engine only passes its record on
    from synthaug.generate.guided import Guidance

CONFIG_FORMAT = 1
# Tolerance for float sums of prices when comparing against max_cost.
_COST_EPSILON = 1e-9


def derive_seed(run_seed: int, label: str, index: int, attempt: int) -> int:
    """Seed of one image slot: a 63-bit hash of the run seed, the label, the index and the attempt.

    Independent of the class order and of which other slots exist, so adding classes or
    images later never changes an existing slot's seed. 63 bits fit ``int64`` fields and
    ``torch.Generator.manual_seed``.
    """
    digest = hashlib.sha256(f"{run_seed}\x00{label}\x00{index}\x00{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class _RunState:
    """Book-keeping of one run: what is committed, refused, spent."""

    committed: set[str]
    refused_prompts: defaultdict[str, set[str]]
    next_attempt: dict[tuple[str, int], int]
    spent_before: float
    spent_now: float = 0.0
    generated: int = 0
    rejected: int = 0
    stopped_by_max_cost: bool = False


def generate_dataset(
    out_dir: str | os.PathLike[str],
    classes: Sequence[str],
    per_class: int,
    backend: str | GeneratorBackend = "ddpm",
    model: str | None = None,
    prompt: str | PromptSpec = DEFAULT_TEMPLATE,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    backend_options: Mapping[str, Any] | None = None,
    max_cost: float | None = None,
    max_attempts: int = 5,
    dry_run: bool = False,
    extend: bool = False,
    progress: ProgressCallback | None = None,
    init_images: Guidance | None = None,
    executor: Executor | None = None,
    resources: Resources | None = None,
) -> dict[str, Any]:
    """Generate ``per_class`` images for each class into ``out_dir``, resuming if it exists.

    Args:
        out_dir: Output folder; created if missing.
        classes: Class labels, verbatim (any characters; folder names are safe slugs).
        per_class: Images wanted per class at the end (existing ones count).
        backend: Registry key of the backend (``ddpm``, ``openai``, ``diffusers``) or a
            ready backend instance (then ``model``/``backend_options`` must be ``None``).
        model: Model name or path for the backend; ``None`` is the backend's default.
        prompt: A template with ``{label}``, or a :class:`PromptSpec` with per-class prompts
            and diversity options.
        seed: Run seed; every image's seed is derived from it (see :func:`derive_seed`).
        params: Generation parameters (``size``, ``quality``, ``style``, ``steps``,
            ``guidance_scale``, ``negative_prompt``); the backend rejects what it does not
            support before anything is generated.
        backend_options: Backend options (``concurrency``, ``device``, ``batch_size``...).
        max_cost: Cap in US dollars on the estimated total cost of the folder (earlier runs
            included); requests that would exceed it are not sent.
        max_attempts: Tries per slot when the provider refuses its prompt.
        dry_run: Return the plan without generating or writing anything.
        extend: Allow a folder generated with other settings: add classes or images with
            the new settings (each row records its own provenance).
        progress: Called as images are committed (stage ``generate <backend>``, in images).
        executor: Where the images are generated (:mod:`synthaug.execution`); ``None`` or a
            one-worker local executor generates in this process. With several workers or Ray,
            the pending slots are cut into shards that workers generate into this folder
            (which they must all see) and that this process merges (``docs/scaling.md``); the
            backend must then be given by registry key.
        resources: What one shard needs on a Ray cluster (e.g. ``Resources(num_gpus=0.5)``).
        init_images: Real images to start from (guided generation, see
            :mod:`synthaug.generate.guided`): slot ``j`` of a class is a variant of the
            class's real image ``j mod n``; ``None`` for text-to-image.

    Returns:
        With ``dry_run``, the plan: ``requests_per_class``, ``example_prompts``,
        ``estimated_cost_usd``, ``estimated_seconds``... Otherwise the summary:
        ``generated``, ``reused``, ``rejected``, ``cost_usd`` (this run),
        ``total_cost_usd`` (folder), ``seconds``, ``images_per_second``, ``per_class``
        counts, ``missing`` per class, ``stopped_by_max_cost``.

    Raises:
        ConfigError: Invalid classes, prompts, parameters or options, or a folder written
            with other settings.
        GenerationError: The backend cannot go on (bad key, exhausted quota...), or the
            disk is full. Everything committed before stays, and a rerun resumes.
    """
    root = Path(out_dir)
    classes = _check_classes(classes)
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ConfigError(f"per_class must be a positive integer, got {per_class!r}")
    if max_attempts < 1:
        raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")
    if max_cost is not None and max_cost < 0:
        raise ConfigError(f"max_cost must be >= 0 US dollars, got {max_cost}")
    spec = PromptSpec(templates=(prompt,)) if isinstance(prompt, str) else prompt
    spec.validate(classes)
    params = dict(params or {})

    distributed = executor is not None and not executor.in_process
    if distributed and isinstance(backend, GeneratorBackend):
        raise ConfigError(
            "to generate on several workers, pass the backend by its registry key (each worker builds "
            "its own), not as an instance"
        )
    backend_spec = _BackendSpec(str(backend), model, dict(backend_options or {}))
    with _open_backend(backend, model, backend_options) as generator:
        _validate_params(generator, params, spec)
        if init_images is not None:
            generator.validate_guidance(init_images.strengths)
            missing = [label for label in classes if label not in init_images.images]
            if missing:
                raise ConfigError(f"init_images: no real images of {', '.join(map(repr, missing))}")
        settings = json.loads(
            json.dumps(
                {
                    "backend": generator.name,
                    "model": generator.describe().get("model"),
                    "seed": seed,
                    "params": params,
                    "prompts": spec.to_dict(),
                    # Only guided runs record it, so text-to-image folders keep their settings.
                    **({"init_images": init_images.to_dict()} if init_images is not None else {}),
                }
            )
        )
        config = _read_config(root)
        folders = _check_settings(root, config, settings, classes, per_class, extend)
        plan = _Planner(classes, per_class, folders, spec, seed, params, max_attempts, init_images)
        empty_state = plan.state([], [])
        for label in classes:
            first_request = plan.request(label, 0, 0, empty_state)
            if first_request is not None:
                generator.check_request(first_request)

        if dry_run:
            scan = scan_manifest(root) if root.exists() else None
            rejected_rows = read_jsonl(root / REJECTED_NAME)[0]
            rows = scan.rows if scan else []
            # Images that workers of a killed run committed and the next run will merge.
            leftovers, _ = unmerged(root, {row["file_name"] for row in rows}, {_refusal_key(r) for r in rejected_rows})
            state = plan.state([*rows, *leftovers.rows], [*rejected_rows, *leftovers.rejections])
            return _dry_run_plan(root, generator, plan, state, max_cost)

        root.mkdir(parents=True, exist_ok=True)
        with directory_lock(root):
            remove_temp_files(root)
            scan = scan_manifest(root)
            if scan.needs_rewrite:
                rewrite_jsonl(root / MANIFEST_NAME, scan.rows)
            rejected_rows, rejected_torn = read_jsonl(root / REJECTED_NAME)
            if rejected_torn:
                rewrite_jsonl(root / REJECTED_NAME, rejected_rows)
            # Shards finished by workers of a run that was killed before merging them.
            leftovers = merge_shards(
                root, {row["file_name"] for row in scan.rows}, {_refusal_key(row) for row in rejected_rows}
            )
            remove_manifests_dir(root)
            _write_config(root, config, settings, classes, per_class, folders, generator)
            state = plan.state([*scan.rows, *leftovers.rows], [*rejected_rows, *leftovers.rejections])
            reused = sum(plan.counts(state.committed).values())
            started = time.perf_counter()
            if distributed:
                _run_sharded(root, generator, backend_spec, plan, state, max_cost, progress, executor, resources)
            else:
                _run(root, generator, plan, state, max_cost, progress)
            seconds = time.perf_counter() - started

    counts = plan.counts(state.committed)
    return {
        "out_dir": str(root),
        "backend": settings["backend"],
        "model": settings["model"],
        "classes": len(classes),
        "per_class": per_class,
        "generated": state.generated,
        "reused": reused,
        "rejected": state.rejected,
        "cost_usd": round(state.spent_now, 6),
        "total_cost_usd": round(state.spent_before + state.spent_now, 6),
        "seconds": round(seconds, 3),
        "images_per_second": round(state.generated / seconds, 3) if seconds > 0 else 0.0,
        "per_class_counts": counts,
        "missing": {label: per_class - n for label, n in counts.items() if n < per_class},
        "stopped_by_max_cost": state.stopped_by_max_cost,
        "dropped_rows": len(scan.dropped),
    }


def _check_classes(classes: Sequence[str]) -> list[str]:
    if isinstance(classes, str):
        raise ConfigError("classes must be a list of labels, not one string; split it first")
    labels = list(classes)
    if not labels:
        raise ConfigError("classes: give at least one class label")
    bad = [label for label in labels if not isinstance(label, str) or not label.strip()]
    if bad:
        raise ConfigError(f"classes: every label must be a non-empty string, got {bad!r}")
    duplicates = sorted(label for label, n in Counter(labels).items() if n > 1)
    if duplicates:
        raise ConfigError(f"classes: {', '.join(map(repr, duplicates))} listed twice")
    return labels


@contextmanager
def _open_backend(
    backend: str | GeneratorBackend, model: str | None, options: Mapping[str, Any] | None
) -> Iterator[GeneratorBackend]:
    """Yield the backend; one built here from a registry key is closed afterwards."""
    if isinstance(backend, GeneratorBackend):
        if model is not None or options:
            raise ConfigError("pass model and backend options to the backend instance, not to generate_dataset")
        yield backend
        return
    with make_backend(backend, model, **dict(options or {})) as generator:
        yield generator


def _validate_params(generator: GeneratorBackend, params: dict[str, Any], spec: PromptSpec) -> None:
    generator.validate(params)
    if spec.guidance_scale_range is not None:
        if "guidance_scale" in params:
            raise ConfigError("give either a guidance scale or a guidance scale range, not both")
        for guidance_scale in spec.guidance_scale_range:
            generator.validate({**params, "guidance_scale": guidance_scale})


def _read_config(root: Path) -> dict[str, Any] | None:
    """The folder's ``generation.json``, or ``None`` for a new or empty folder.

    Raises:
        ConfigError: The folder holds other files but no ``generation.json``.
    """
    path = root / CONFIG_NAME
    if path.is_file():
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(f"{path}: unreadable ({error}); restore it or choose a new --out folder") from error
        if not isinstance(config, dict) or not config.get("runs") or not isinstance(config.get("folders"), dict):
            raise ConfigError(f"{path}: not a synthaug generation record; restore it or choose a new --out folder")
        return config
    if root.exists():
        if not root.is_dir():
            raise ConfigError(f"--out {root} is a file; give a folder")
        foreign = [p.name for p in root.iterdir() if p.name != LOCK_NAME and not p.name.startswith(TEMP_PREFIX)]
        if foreign:
            raise ConfigError(
                f"{root} already holds files that synthaug generate did not write "
                f"({', '.join(sorted(foreign)[:3])}...); choose an empty or new --out folder"
            )
    return None


def _check_settings(
    root: Path,
    config: dict[str, Any] | None,
    settings: dict[str, Any],
    classes: list[str],
    per_class: int,
    extend: bool,
) -> dict[str, str]:
    """Refuse to mix configurations unless ``extend``; return the label -> folder mapping."""
    if config is None:
        return class_folders(classes)
    last = config["runs"][-1]
    changes = [
        f"{key}: {_short(last['settings'].get(key))} -> {_short(value)}"
        for key, value in settings.items()
        if last["settings"].get(key) != value
    ]
    if last["classes"] != classes:
        changes.append(f"classes: {_short(last['classes'])} -> {_short(classes)}")
    if last["per_class"] != per_class:
        changes.append(f"per_class: {last['per_class']} -> {per_class}")
    if changes and not extend:
        raise ConfigError(
            f"{root} was generated with other settings ({'; '.join(changes)}); rerun with the "
            "same settings to resume, choose a new --out folder, or pass --extend to add images "
            "with the new settings"
        )
    return class_folders(classes, existing=config["folders"])


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _write_config(
    root: Path,
    config: dict[str, Any] | None,
    settings: dict[str, Any],
    classes: list[str],
    per_class: int,
    folders: dict[str, str],
    generator: GeneratorBackend,
) -> None:
    """Record this run in ``generation.json`` (a resume with the same settings adds nothing)."""
    run = {"settings": settings, "classes": classes, "per_class": per_class}
    if config is not None:
        last = config["runs"][-1]
        if {key: last[key] for key in run} == run:
            return
    config = config or {"format": CONFIG_FORMAT, "folders": {}, "runs": []}
    config["folders"] = {**config["folders"], **folders}
    config["runs"].append(
        {
            **run,
            "generator": generator.describe(),
            "created": _utc_now(),
            "synthaug_version": synthaug.__version__,
        }
    )
    atomic_write_bytes(root / CONFIG_NAME, (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode())


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Planner:
    """Turns image slots into requests; the single place prompts and seeds are derived."""

    def __init__(
        self,
        classes: list[str],
        per_class: int,
        folders: dict[str, str],
        spec: PromptSpec,
        seed: int,
        params: dict[str, Any],
        max_attempts: int,
        init_images: Guidance | None = None,
    ) -> None:
        self.classes = classes
        self.class_index = {label: position for position, label in enumerate(classes)}
        self.per_class = per_class
        self.folders = folders
        self.spec = spec
        self.seed = seed
        self.params = params
        self.max_attempts = max_attempts
        self.init_images = init_images

    def file_name(self, label: str, index: int) -> str:
        return f"{self.folders[label]}/{index:06d}.png"

    def state(self, rows: list[dict[str, Any]], rejected_rows: list[dict[str, Any]]) -> _RunState:
        refused_prompts: defaultdict[str, set[str]] = defaultdict(set)
        next_attempt: dict[tuple[str, int], int] = {}
        for row in rejected_rows:
            refused_prompts[row["label"]].add(row["prompt"])
            slot = (row["label"], row["index"])
            next_attempt[slot] = max(next_attempt.get(slot, 0), row["attempt"] + 1)
        spent = sum(row.get("cost_usd", 0.0) for row in [*rows, *rejected_rows])
        return _RunState(
            committed={row["file_name"] for row in rows},
            refused_prompts=refused_prompts,
            next_attempt=next_attempt,
            spent_before=spent,
        )

    def pending(self, state: _RunState) -> list[ImageRequest]:
        """Requests for every slot not committed yet, in class order."""
        requests = []
        for label in self.classes:
            for index in range(self.per_class):
                if self.file_name(label, index) not in state.committed:
                    request = self.request(label, index, state.next_attempt.get((label, index), 0), state)
                    if request is not None:
                        requests.append(request)
        return requests

    def request(self, label: str, index: int, attempt: int, state: _RunState) -> ImageRequest | None:
        """The slot's request at the first attempt >= ``attempt`` whose prompt was never refused
        for this class; ``None`` when the attempts run out (the slot stays missing)."""
        for tried in range(attempt, self.max_attempts):
            seed = derive_seed(self.seed, label, index, tried)
            choice = self.spec.choose(label, index, tried, seed)
            if choice.prompt in state.refused_prompts[label]:
                continue
            params = dict(self.params)
            if choice.guidance_scale is not None:
                params["guidance_scale"] = choice.guidance_scale
            init_image, strength, variant = None, None, 0
            if self.init_images is not None:
                init_image, strength = self.init_images.choose(label, index, seed)
                variant = self.init_images.variant(label, index)
            return ImageRequest(
                label=label,
                class_index=self.class_index[label],
                index=index,
                seed=seed,
                prompt=choice.prompt,
                params=params,
                attempt=tried,
                folder=self.folders[label],
                init_image=init_image,
                strength=strength,
                variant=variant,
            )
        return None

    def prompt_options(self, request: ImageRequest) -> dict[str, Any]:
        return self.spec.choose(request.label, request.index, request.attempt, request.seed).options

    def counts(self, committed: set[str]) -> dict[str, int]:
        return {
            label: sum(self.file_name(label, index) in committed for index in range(self.per_class))
            for label in self.classes
        }


def _affordable(
    requests: list[ImageRequest], generator: GeneratorBackend, budget: float
) -> tuple[list[ImageRequest], bool]:
    """The longest prefix of ``requests`` whose estimated cost fits in ``budget``; and whether
    anything was cut."""
    total = 0.0
    for position, request in enumerate(requests):
        total += generator.estimate_cost(request)
        if total > budget + _COST_EPSILON:
            return requests[:position], True
    return requests, False


def _dry_run_plan(
    root: Path, generator: GeneratorBackend, plan: _Planner, state: _RunState, max_cost: float | None
) -> dict[str, Any]:
    pending = plan.pending(state)
    costs = [generator.estimate_cost(request) for request in pending]
    affordable = len(pending)
    if max_cost is not None:
        affordable = len(_affordable(pending, generator, max_cost - state.spent_before)[0])
    prompts: defaultdict[str, list[str]] = defaultdict(list)
    for request in pending:
        if len(prompts[request.label]) < 3:
            prompts[request.label].append(request.prompt)
    return {
        "dry_run": True,
        "out_dir": str(root),
        "backend": generator.name,
        "generator": generator.describe(),
        "per_class": plan.per_class,
        "existing": len(state.committed),
        "to_generate": len(pending),
        "requests_per_class": dict(Counter(request.label for request in pending)),
        "example_prompts": dict(prompts),
        "params": plan.params,
        "init_images": plan.init_images.to_dict() if plan.init_images is not None else None,
        "estimated_cost_usd": round(sum(costs), 6),
        "spent_before_usd": round(state.spent_before, 6),
        "max_cost": max_cost,
        "affordable": affordable,
        "estimated_seconds": generator.estimate_seconds(len(pending)),
    }


class _Committer:
    """Commits images on one background thread, so that disk syncs overlap generation.

    One thread keeps the manifest a single appender in arrival order. After a failed write
    nothing more is committed (a torn row must stay the last line), and the error surfaces
    in the caller's thread at the next :meth:`submit` or :meth:`drain`. :meth:`close`
    commits every image already received, even when the run is being interrupted.
    """

    # Images waiting for the disk at most; bounds memory when the disk is slower than the model.
    max_pending = 64

    def __init__(
        self,
        root: Path,
        generator: GeneratorBackend,
        prompt_options: Callable[[ImageRequest], dict[str, Any]],
        on_commit: Callable[[dict[str, Any]], None],
        manifest: Path | None = None,
    ) -> None:
        self.root = root
        self.generator_info = generator.describe()
        self.prompt_options = prompt_options
        self.on_commit = on_commit
        self.manifest = JsonlAppender(manifest or root / MANIFEST_NAME)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthaug-commit")
        self._pending: deque[Future[None]] = deque()
        self._failed = threading.Event()

    def submit(self, result: GeneratedImage) -> None:
        while self._pending and (self._pending[0].done() or len(self._pending) >= self.max_pending):
            self._pending.popleft().result()
        self._pending.append(self._executor.submit(self._commit, result))

    def drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.manifest.close()

    def _commit(self, result: GeneratedImage) -> None:
        if self._failed.is_set():
            return
        try:
            row = _commit(self.root, result, self.generator_info, self.prompt_options(result.request))
            self.manifest.append(row)
        except BaseException:
            self._failed.set()
            raise
        self.on_commit(row)


def _run(
    root: Path,
    generator: GeneratorBackend,
    plan: _Planner,
    state: _RunState,
    max_cost: float | None,
    progress: ProgressCallback | None,
) -> None:
    """Generate in this process: send the pending requests in rounds (a round's refusals
    become the next round) and commit every result to ``metadata.jsonl`` as it arrives."""
    tracker = _Progress(progress, f"generate {generator.name}", root.name, state, plan.pending(state))

    def committed(row: dict[str, Any]) -> None:
        state.committed.add(row["file_name"])
        state.generated += 1
        tracker.advance()

    pending = tracker.pending
    committer = _Committer(root, generator, plan.prompt_options, committed)
    rejections = JsonlAppender(root / REJECTED_NAME)
    try:
        while pending:
            pending = tracker.afford(pending, generator, max_cost)
            round_requests, pending = pending, []
            for result in generator.generate(round_requests):
                state.spent_now += result.cost_usd
                if isinstance(result, GeneratedImage):
                    committer.submit(result)
                else:
                    rejections.append(_rejection_row(result))
                    pending.extend(tracker.refused(plan, result.request))
            committer.drain()
    finally:
        committer.close()
        rejections.close()
        tracker.finish()


@dataclass(frozen=True)
class _BackendSpec:
    """How a worker builds the run's backend: registry key, model and options."""

    key: str
    model: str | None
    options: dict[str, Any]

    def build(self) -> GeneratorBackend:
        """This worker process's backend, built once (a GPU pipeline loads once per worker)."""
        cache_key = ("generator", self.key, self.model, json.dumps(self.options, sort_keys=True, default=str))
        return worker_state(cache_key, lambda: make_backend(self.key, self.model, **self.options))


@dataclass(frozen=True)
class _ShardJob:
    """One shard of a distributed run: what a worker needs to generate and commit it.

    Attributes:
        root: The dataset folder (shared by every worker).
        shard: Shard id, unique within the run (``r<round>-<number>``).
        backend: How to build the backend.
        requests: The slots to generate.
        prompt_options: Each request's drawn prompt options, recorded in its row.
        rate_limiter: The run's shared rate limit (an API account's), replacing the backend's
            own; ``None`` when the backend keeps none.
    """

    root: str
    shard: str
    backend: _BackendSpec
    requests: tuple[ImageRequest, ...]
    prompt_options: tuple[dict[str, Any], ...]
    rate_limiter: Reserver | None = None


def _run_shard(job: _ShardJob) -> int:
    """A worker's part: generate a shard's images into the folder, rows into its own shard
    manifest, refusals into its own refusals file. Returns the images generated.

    A retried shard (its first worker died) skips what the earlier try committed or had
    refused, so nothing is paid for twice; the driver re-plans the refused slots.
    """
    root = Path(job.root)
    generator = job.backend.build()
    if job.rate_limiter is not None:
        generator.rate_limiter = job.rate_limiter  # type: ignore[attr-defined]
    done_files, done_refusals = committed_in_shard(root, job.shard)
    options = {request.key: option for request, option in zip(job.requests, job.prompt_options, strict=True)}
    requests = [
        request
        for request in job.requests
        if f"{request.key}.png" not in done_files
        and (request.label, request.index, request.attempt) not in done_refusals
    ]
    manifest, rejected = shard_paths(root, worker_name(), job.shard)
    generated = 0

    def committed(row: dict[str, Any]) -> None:
        nonlocal generated
        generated += 1

    committer = _Committer(root, generator, lambda request: options[request.key], committed, manifest)
    rejections = JsonlAppender(rejected)
    try:
        for result in generator.generate(requests):
            if isinstance(result, GeneratedImage):
                committer.submit(result)
            else:
                rejections.append(_rejection_row(result))
        committer.drain()
    finally:
        committer.close()
        rejections.close()
    return generated


def _run_sharded(
    root: Path,
    generator: GeneratorBackend,
    backend: _BackendSpec,
    plan: _Planner,
    state: _RunState,
    max_cost: float | None,
    progress: ProgressCallback | None,
    executor: Executor,
    resources: Resources | None,
) -> None:
    """Generate on the executor's workers: each round's affordable requests are cut into shards;
    as each shard finishes its files are merged into the folder's own (``docs/scaling.md``).

    The driver's ``generator`` only prices requests: the cost cap is applied here, before a
    shard is handed out, and what was spent is read from the merged rows.
    """
    root = root.absolute()  # a worker's working directory is not this one (on Ray: where `ray start` ran)
    if not executor.sees_folder(root):
        raise ConfigError(
            f"{root}: the Ray workers do not see this folder; generation on Ray writes the images from "
            "the workers, so the output folder must be on a file system every node mounts (NFS, EFS, a "
            "shared volume): give such a path, or generate without --ray"
        )
    backend = _absolute_paths(backend)
    tracker = _Progress(progress, f"generate {generator.name}", root.name, state, plan.pending(state))
    refused = {(label, index, attempt) for label, index, attempt in _refused_slots(root)}
    for label in plan.classes:  # created here, so that workers never race to create a class folder
        (root / plan.folders[label]).mkdir(exist_ok=True)
    (root / ".manifests").mkdir(exist_ok=True)
    pending = tracker.pending
    round_number = 0
    own_limit = getattr(generator, "rate_limiter", None)
    rate_limiter = executor.rate_limiter(own_limit.per_second) if own_limit is not None else None
    try:
        while pending:
            pending = tracker.afford(pending, generator, max_cost)
            jobs = [
                _ShardJob(str(root), f"r{round_number}-{number:05d}", backend, tuple(shard),
                          tuple(plan.prompt_options(request) for request in shard), rate_limiter)  # fmt: skip
                for number, shard in enumerate(_shards(pending, generator, executor.parallelism))
            ]
            round_number += 1
            pending = []
            for job, _ in executor.map_unordered(_run_shard, jobs, resources):
                merged = merge_shards(root, state.committed, refused, job.shard)
                state.generated += len(merged.rows)
                state.spent_now += sum(float(row.get("cost_usd", 0.0)) for row in merged.rows)
                state.spent_now += sum(float(row.get("cost_usd", 0.0)) for row in merged.rejections)
                tracker.advance(len(merged.rows))
                for row in merged.rejections:
                    request = next(r for r in job.requests if (r.label, r.index, r.attempt) == _refusal_key(row))
                    pending.extend(tracker.refused(plan, request))
    finally:
        merge_shards(root, state.committed, refused)
        remove_manifests_dir(root)
        tracker.finish()


def _absolute_paths(backend: _BackendSpec) -> _BackendSpec:
    """``backend`` with a model or LoRA given as a relative local path made absolute, so that a
    worker finds the folder this process means (a hub id, not a path here, stays as it is)."""

    def absolute(value: Any) -> Any:
        return str(Path(value).absolute()) if isinstance(value, str) and Path(value).exists() else value

    options = {**backend.options, **({"lora": absolute(backend.options["lora"])} if "lora" in backend.options else {})}
    return dataclasses.replace(backend, model=absolute(backend.model), options=options)


def _refused_slots(root: Path) -> set[tuple[Any, Any, Any]]:
    return {_refusal_key(row) for row in read_jsonl(root / REJECTED_NAME)[0]}


def _refusal_key(row: dict[str, Any]) -> tuple[Any, Any, Any]:
    return row.get("label"), row.get("index"), row.get("attempt")


def _shards(requests: list[ImageRequest], generator: GeneratorBackend, workers: int) -> list[list[ImageRequest]]:
    """Cut ``requests`` into balanced shards: at least one per worker, at most 64 requests each
    (a lost worker costs little and progress moves), a multiple of what the backend runs at
    once (its batch, or its calls in flight) so that no worker idles in a half-empty wave."""
    if not requests:
        return []
    wave = max(1, generator.max_batch_size) * max(1, int(getattr(generator, "concurrency", 1)))
    per_worker = -(-len(requests) // max(1, workers))
    per_shard = -(-per_worker // -(-per_worker // max(64, wave)))
    per_shard = -(-per_shard // wave) * wave
    return [requests[start : start + per_shard] for start in range(0, len(requests), per_shard)]


class _Progress:
    """The run's progress events and the bookkeeping of how many images remain."""

    def __init__(
        self, progress: ProgressCallback | None, stage: str, item: str, state: _RunState, pending: list[ImageRequest]
    ) -> None:
        self.progress = progress
        self.stage = stage
        self.item = item
        self.state = state
        self.pending = pending
        self.done = len(state.committed)
        self.total = self.done + len(pending)
        self._lock = threading.Lock()
        self._report()

    def _report(self, finished: bool = False) -> None:
        report(self.progress, self.stage, self.done, self.total, item=self.item, unit="images", finished=finished)

    def advance(self, n: int = 1) -> None:
        with self._lock:  # the in-process committer reports from its own thread
            self.done += n
            self._report()

    def afford(
        self, pending: list[ImageRequest], generator: GeneratorBackend, max_cost: float | None
    ) -> list[ImageRequest]:
        """The requests the cost cap still allows (the rest are dropped from the total)."""
        if max_cost is None:
            return pending
        budget = max_cost - self.state.spent_before - self.state.spent_now
        affordable, cut = _affordable(pending, generator, budget)
        self.state.stopped_by_max_cost |= cut
        with self._lock:
            self.total -= len(pending) - len(affordable)
        return affordable

    def refused(self, plan: _Planner, request: ImageRequest) -> list[ImageRequest]:
        """Record a refusal; the slot's next attempt (none once its attempts run out)."""
        self.state.rejected += 1
        self.state.refused_prompts[request.label].add(request.prompt)
        retry = plan.request(request.label, request.index, request.attempt + 1, self.state)
        if retry is None:
            with self._lock:
                self.total -= 1
            self._report()
            return []
        return [retry]

    def finish(self) -> None:
        self._report(finished=True)


def _rejection_row(result: RejectedRequest) -> dict[str, Any]:
    request = result.request
    return {
        "label": request.label,
        "index": request.index,
        "attempt": request.attempt,
        "seed": request.seed,
        "prompt": request.prompt,
        "code": result.code,
        "reason": result.reason,
        "cost_usd": float(result.cost_usd),
        "created": _utc_now(),
    }


def _commit(
    root: Path, result: GeneratedImage, generator_info: dict[str, Any], prompt_options: dict[str, Any]
) -> dict[str, Any]:
    """Write one image atomically and return its manifest row (appended by the caller)."""
    request = result.request
    file_name = f"{request.key}.png"
    path = root / file_name
    if not path.parent.exists():
        path.parent.mkdir()
        fsync_directory(root)  # the new class folder must survive a crash as well as its files
    buffer = io.BytesIO()
    result.image.save(buffer, format="PNG")
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    row = {
        "file_name": file_name,
        "label": request.label,
        "prompt": request.prompt,
        "revised_prompt": result.revised_prompt,
        "backend": generator_info.get("backend"),
        "model": generator_info.get("model"),
        "seed": request.seed,
        "index": request.index,
        "attempt": request.attempt,
        "params": dict(request.params),
        "prompt_options": prompt_options,
        "width": result.image.width,
        "height": result.image.height,
        "sha256": hashlib.sha256(data).hexdigest(),
        "created": _utc_now(),
        "cost_usd": float(result.cost_usd),
        "synthaug_version": synthaug.__version__,
    }
    if request.init_image is not None:
        row["init_image"] = {
            "file_name": request.init_image.file_name,
            "sha256": request.init_image.sha256,
            "strength": request.strength,
            "variant": request.variant,
        }
    if result.extra:
        row["extra"] = result.extra
    return row
