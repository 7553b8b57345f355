"""The generation engine: plan image requests, hand them to a backend, commit each result.

A run is a set of independent image slots ``(label, index)``, ``index < per_class``. Each
slot becomes an :class:`~synthaug.generate.backends.base.ImageRequest` whose prompt and
seed are derived deterministically from the run seed, the label, the index and the
attempt number, so any slot can be (re)generated anywhere, in any order, with the same
result. The engine:

1. checks the output folder: a folder written with other settings is refused unless
   ``extend=True``; the run's settings are stored in ``DIR/generation.json``
   (:mod:`synthaug.generate.folder_config`);
2. resumes: keeps only manifest rows whose file exists with the recorded sha256, removes
   its own temporary files, and reads ``DIR/rejected.jsonl`` so that a refused prompt is
   never sent again;
3. feeds the missing slots to the backend, affordable ones only when ``max_cost`` is set,
   and commits each image as it arrives (see :mod:`synthaug.generate.manifest`); a refused
   slot moves on to its next prompt variant, up to ``max_attempts`` tries (the plan:
   :mod:`synthaug.generate.plan`; the loop: :mod:`synthaug.generate.commit`).

Only committed images count, so a run killed at any point is resumed by running it again.

With an executor of several workers (:mod:`synthaug.execution`), step 3 runs in shards on
the workers, each committing into its own shard manifest, which this process merges as each
shard finishes (:mod:`synthaug.generate.sharded`, :mod:`synthaug.generate.shards`,
``docs/scaling.md``). Both paths run the same generate-and-commit loop; the cost cap and the
re-planning of refused slots stay on the driver.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthaug.errors import ConfigError, GenerationError
from synthaug.execution import Executor, Resources
from synthaug.fileio import directory_lock
from synthaug.generate.backends import GeneratorBackend, ImageRequest, make_backend
from synthaug.generate.commit import Committer, generate_and_commit
from synthaug.generate.folder_config import check_classes, check_settings, read_config, write_config
from synthaug.generate.manifest import (
    MANIFEST_NAME,
    REJECTED_NAME,
    read_jsonl,
    remove_temp_files,
    rewrite_jsonl,
    scan_manifest,
)
from synthaug.generate.plan import Planner, RunProgress, RunState, derive_seed, dry_run_plan
from synthaug.generate.prompts import DEFAULT_TEMPLATE, PromptSpec
from synthaug.generate.sharded import BackendSpec, run_sharded
from synthaug.generate.shards import merge_shards, refusal_key, remove_manifests_dir, unmerged
from synthaug.progress import ProgressCallback

if TYPE_CHECKING:  # guided reads datasets (torch); the engine only passes its record on
    from synthaug.generate.guided import Guidance

# derive_seed is part of this module's public surface (tests and docs import it from here).
__all__ = ["PromptSpec", "derive_seed", "generate_dataset"]


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
    classes = check_classes(classes)
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
    backend_spec = BackendSpec(str(backend), model, dict(backend_options or {}))
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
        config = read_config(root)
        folders = check_settings(root, config, settings, classes, per_class, extend)
        plan = Planner(classes, per_class, folders, spec, seed, params, max_attempts, init_images)
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
            leftovers, _ = unmerged(root, {row["file_name"] for row in rows}, {refusal_key(r) for r in rejected_rows})
            state = plan.state([*rows, *leftovers.rows], [*rejected_rows, *leftovers.rejections])
            return dry_run_plan(root, generator, plan, state, max_cost)

        generator.check_ready()
        root.mkdir(parents=True, exist_ok=True)
        with directory_lock(root, GenerationError):
            remove_temp_files(root)
            scan = scan_manifest(root)
            if scan.needs_rewrite:
                rewrite_jsonl(root / MANIFEST_NAME, scan.rows)
            rejected_rows, rejected_torn = read_jsonl(root / REJECTED_NAME)
            if rejected_torn:
                rewrite_jsonl(root / REJECTED_NAME, rejected_rows)
            # Shards finished by workers of a run that was killed before merging them.
            leftovers = merge_shards(
                root, {row["file_name"] for row in scan.rows}, {refusal_key(row) for row in rejected_rows}
            )
            remove_manifests_dir(root)
            write_config(root, config, settings, classes, per_class, folders, generator)
            state = plan.state([*scan.rows, *leftovers.rows], [*rejected_rows, *leftovers.rejections])
            reused = sum(plan.counts(state.committed).values())
            started = time.perf_counter()
            if distributed:
                run_sharded(root, generator, backend_spec, plan, state, max_cost, progress, executor, resources)
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


def _run(
    root: Path,
    generator: GeneratorBackend,
    plan: Planner,
    state: RunState,
    max_cost: float | None,
    progress: ProgressCallback | None,
) -> None:
    """Generate in this process: send the pending requests in rounds (a round's refusals
    become the next round) and commit every result to ``metadata.jsonl`` as it arrives."""
    tracker = RunProgress(progress, f"generate {generator.name}", root.name, state, plan.pending(state))

    def committed(row: dict[str, Any]) -> None:
        state.committed.add(row["file_name"])
        state.generated += 1
        tracker.advance()

    retries: list[ImageRequest] = []  # the next round: this round's refused slots at their next attempt

    def refused(request: ImageRequest) -> None:
        retries.extend(tracker.refused(plan, request))

    pending = tracker.pending
    manifest, rejected = root / MANIFEST_NAME, root / REJECTED_NAME
    try:
        with Committer(root, generator, plan.prompt_options, committed, manifest, rejected) as committer:
            while pending:
                affordable = tracker.afford(pending, generator, max_cost)
                state.spent_now += generate_and_commit(generator, affordable, committer, refused)
                pending = retries.copy()
                retries.clear()
    finally:
        tracker.finish()
