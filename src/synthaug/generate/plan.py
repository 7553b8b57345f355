"""Planning a run: which image slots are missing, and each slot's prompt, seed and attempt.

A run is a set of independent image slots ``(label, index)``, ``index < per_class``. Each slot
becomes an :class:`~synthaug.generate.backends.base.ImageRequest` whose prompt and seed are
derived from the run seed, the label, the index and the attempt number only, so any slot can
be (re)generated anywhere, in any order, with the same result: that is what makes a killed
run resumable and a sharded run identical to an in-process one. A refused prompt is never
sent again for its class; the slot moves on to its next attempt.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthaug.generate.backends import GeneratorBackend, ImageRequest
from synthaug.generate.prompts import PromptSpec
from synthaug.progress import ProgressCallback, report

if TYPE_CHECKING:  # guided reads datasets (torch); planning only passes its record on
    from synthaug.generate.guided import Guidance

__all__ = ["Planner", "RunProgress", "RunState", "affordable_prefix", "derive_seed", "dry_run_plan"]

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
class RunState:
    """Book-keeping of one run: what is committed, refused, spent."""

    committed: set[str]
    refused_prompts: defaultdict[str, set[str]]
    next_attempt: dict[tuple[str, int], int]
    spent_before: float
    spent_now: float = 0.0
    generated: int = 0
    rejected: int = 0
    stopped_by_max_cost: bool = False


class Planner:
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

    def state(self, rows: list[dict[str, Any]], rejected_rows: list[dict[str, Any]]) -> RunState:
        refused_prompts: defaultdict[str, set[str]] = defaultdict(set)
        next_attempt: dict[tuple[str, int], int] = {}
        for row in rejected_rows:
            refused_prompts[row["label"]].add(row["prompt"])
            slot = (row["label"], row["index"])
            next_attempt[slot] = max(next_attempt.get(slot, 0), row["attempt"] + 1)
        spent = sum(row.get("cost_usd", 0.0) for row in [*rows, *rejected_rows])
        return RunState(
            committed={row["file_name"] for row in rows},
            refused_prompts=refused_prompts,
            next_attempt=next_attempt,
            spent_before=spent,
        )

    def pending(self, state: RunState) -> list[ImageRequest]:
        """Requests for every slot not committed yet, in class order."""
        requests = []
        for label in self.classes:
            for index in range(self.per_class):
                if self.file_name(label, index) not in state.committed:
                    request = self.request(label, index, state.next_attempt.get((label, index), 0), state)
                    if request is not None:
                        requests.append(request)
        return requests

    def request(self, label: str, index: int, attempt: int, state: RunState) -> ImageRequest | None:
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


def affordable_prefix(
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


def dry_run_plan(
    root: Path, generator: GeneratorBackend, plan: Planner, state: RunState, max_cost: float | None
) -> dict[str, Any]:
    """What a run would do from ``state``: requests, example prompts, estimated cost and time."""
    pending = plan.pending(state)
    costs = [generator.estimate_cost(request) for request in pending]
    affordable = len(pending)
    if max_cost is not None:
        affordable = len(affordable_prefix(pending, generator, max_cost - state.spent_before)[0])
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


class RunProgress:
    """The run's progress events and the bookkeeping of how many images remain.

    Shared by the in-process and the sharded runner, so the cost cap and the re-planning of
    refused slots behave the same on one process and on a cluster.
    """

    def __init__(
        self, progress: ProgressCallback | None, stage: str, item: str, state: RunState, pending: list[ImageRequest]
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
        affordable, cut = affordable_prefix(pending, generator, budget)
        self.state.stopped_by_max_cost |= cut
        with self._lock:
            self.total -= len(pending) - len(affordable)
        return affordable

    def refused(self, plan: Planner, request: ImageRequest) -> list[ImageRequest]:
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


