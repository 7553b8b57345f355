"""The generation engine end to end: real openai SDK + backend against the local fake server."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthaug.data import load_dataset
from synthaug.errors import ConfigError, GenerationError
from synthaug.fileio import directory_lock
from synthaug.generate import generate_dataset
from synthaug.generate.backends import GeneratorBackend, make_backend
from synthaug.generate.prompts import PromptSpec

from helpers.fake_openai_server import FAST_RETRIES, REFUSAL_MARKER

CLASSES = ["T-shirt/top", "Trouser", "Ankle boot"]
SIZE = {"size": "256x256"}


def run(out: Path, classes=CLASSES, per_class: int = 3, **kwargs):
    kwargs.setdefault("backend", "openai")
    if kwargs["backend"] == "openai":
        kwargs.setdefault("model", "dall-e-2")
        kwargs["backend_options"] = {**FAST_RETRIES, "concurrency": 4, **kwargs.get("backend_options", {})}
    kwargs.setdefault("params", SIZE)
    return generate_dataset(out, classes, per_class, **kwargs)


def manifest_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]


def assert_complete(out: Path, classes=CLASSES, per_class: int = 3) -> list[dict]:
    """Exactly ``per_class`` committed images per class, every row matching its file."""
    rows = manifest_rows(out)
    assert len({row["file_name"] for row in rows}) == len(rows) == per_class * len(classes)
    for row in rows:
        assert hashlib.sha256((out / row["file_name"]).read_bytes()).hexdigest() == row["sha256"]
    assert sorted(row["label"] for row in rows) == sorted(classes * per_class)
    assert not list(out.rglob(".synthaug-*.tmp"))
    return rows


class CrashAfter(GeneratorBackend):
    """Wraps a real backend and dies (like a crash, not a SynthaugError) after ``k`` images."""

    name = "openai"

    def __init__(self, inner: GeneratorBackend, k: int) -> None:
        super().__init__(inner.model)
        self.inner, self.k = inner, k
        self.supported_params = inner.supported_params

    def describe(self):
        return self.inner.describe()

    def estimate_cost(self, request):
        return self.inner.estimate_cost(request)

    def generate(self, requests):
        for n, result in enumerate(self.inner.generate(requests), start=1):
            yield result
            if n == self.k:
                raise RuntimeError("simulated crash")


def test_exactly_n_images_per_class_with_provenance_loadable_by_both_loaders(openai_server, tmp_path, monkeypatch):
    out = tmp_path / "out"
    summary = run(out)
    assert summary["generated"] == 9 and summary["missing"] == {}
    assert summary["cost_usd"] == pytest.approx(9 * 0.016)
    rows = assert_complete(out)
    row = next(r for r in rows if r["label"] == "T-shirt/top")
    assert row["file_name"].startswith("t-shirt-top/")
    assert row["prompt"] == "a photo of a T-shirt/top" and row["backend"] == "openai" and row["model"] == "dall-e-2"
    assert row["params"] == SIZE and (row["width"], row["height"]) == (256, 256)
    assert {"seed", "created", "cost_usd", "synthaug_version", "revised_prompt"} <= set(row)
    assert json.loads((out / "generation.json").read_text())["runs"][0]["settings"]["model"] == "dall-e-2"

    dataset = load_dataset(out)
    assert sorted(dataset.classes) == sorted(CLASSES) and len(dataset) == 9

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    hf = datasets.load_dataset("imagefolder", data_dir=str(out), split="train")
    assert hf.num_rows == 9 and sorted(set(hf["label"])) == sorted(CLASSES)
    assert hf[0]["image"].size == (256, 256)


def test_resume_after_a_crash_keeps_committed_images_and_finishes(openai_server, tmp_path):
    out = tmp_path / "out"
    crashing = CrashAfter(make_backend("openai", "dall-e-2", concurrency=1, **FAST_RETRIES), k=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate_dataset(out, CLASSES, 3, backend=crashing, params=SIZE)
    committed = {row["file_name"]: (out / row["file_name"]).stat() for row in manifest_rows(out)}
    assert len(committed) == 4

    summary = run(out)
    assert summary["reused"] == 4 and summary["generated"] == 5
    assert_complete(out)
    for file_name, before in committed.items():  # committed images were neither regenerated nor rewritten
        after = (out / file_name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # Only a call in flight at the crash can be paid twice (concurrency 1: at most one).
    assert openai_server.images_served <= 9 + 1
    assert run(out)["generated"] == 0


def test_resume_repairs_every_half_written_state(openai_server, tmp_path):
    out = tmp_path / "out"
    run(out, per_class=2)
    rows = manifest_rows(out)
    unrecorded, lost = rows[-1], rows[0]
    unrecorded_bytes = (out / unrecorded["file_name"]).read_bytes()
    lines = (out / "metadata.jsonl").read_text().splitlines(keepends=True)
    # A crash between rename and append (file, no row) followed by a torn append.
    (out / "metadata.jsonl").write_text("".join(lines[:-1]) + lines[-1][:25])
    (out / lost["file_name"]).unlink()  # row without its file
    own_temp = out / "trouser" / ".synthaug-000007.png.tmp"
    own_temp.write_bytes(b"partial")
    users_file = out / "trouser" / "notes.tmp"
    users_file.write_text("mine")
    calls_before = len(openai_server.calls)

    summary = run(out, per_class=2)
    assert summary["generated"] == 2 and summary["reused"] == 4 and summary["dropped_rows"] == 1
    assert len(openai_server.calls) - calls_before == 2
    rows_after = assert_complete(out, per_class=2)
    assert (out / unrecorded["file_name"]).read_bytes() == unrecorded_bytes  # same request, same image
    regenerated = next(r for r in rows_after if r["file_name"] == unrecorded["file_name"])
    assert (regenerated["prompt"], regenerated["seed"]) == (unrecorded["prompt"], unrecorded["seed"])
    assert not own_temp.exists() and users_file.read_text() == "mine"


def test_other_settings_are_refused_unless_extending(openai_server, tmp_path):
    out = tmp_path / "out"
    run(out, per_class=2)
    with pytest.raises(ConfigError, match=r"model: \"dall-e-2\" -> \"dall-e-3\".*--extend"):
        run(out, per_class=2, model="dall-e-3", params={"size": "1024x1024"})
    with pytest.raises(ConfigError, match="per_class: 2 -> 3"):
        run(out, per_class=3)
    with pytest.raises(ConfigError, match="prompts"):
        run(out, per_class=2, prompt="a studio photo of a {label}")
    assert len(manifest_rows(out)) == 6

    summary = run(out, classes=[*CLASSES, "Bag"], per_class=3, extend=True)
    assert summary["generated"] == 3 + 3 and summary["reused"] == 6
    assert_complete(out, classes=[*CLASSES, "Bag"], per_class=3)
    assert len(json.loads((out / "generation.json").read_text())["runs"]) == 2
    assert run(out, classes=[*CLASSES, "Bag"], per_class=3)["generated"] == 0  # same settings now: resume


def test_dry_run_plans_without_calling_or_writing(openai_server, tmp_path):
    out = tmp_path / "out"
    plan = run(out, dry_run=True, backend_options={"images_per_minute": 6})
    assert not out.exists() and openai_server.calls == []
    assert plan["requests_per_class"] == {label: 3 for label in CLASSES}
    assert plan["estimated_cost_usd"] == pytest.approx(9 * 0.016)
    assert plan["estimated_seconds"] == pytest.approx(90.0)  # 9 images at 6 per minute
    assert plan["example_prompts"]["Trouser"] == ["a photo of a Trouser"] * 3

    run(out, per_class=1)
    plan = run(out, per_class=1, dry_run=True, max_cost=0.02)
    assert plan["to_generate"] == 0 and plan["existing"] == 3
    assert len(openai_server.calls) == 3


def test_max_cost_stops_before_it_is_exceeded(openai_server, tmp_path):
    out = tmp_path / "out"
    summary = run(out, max_cost=0.05)  # $0.016 per dall-e-2 256x256 image: 3 fit
    assert summary["generated"] == 3 and summary["stopped_by_max_cost"]
    assert summary["total_cost_usd"] <= 0.05 and openai_server.images_served == 3
    assert run(out, max_cost=0.05)["generated"] == 0  # the cap covers the folder, earlier runs included
    assert run(out, max_cost=1.0)["generated"] == 6
    assert_complete(out)


def test_refused_prompt_moves_the_class_to_its_next_variant(openai_server, tmp_path):
    out = tmp_path / "out"
    spec = PromptSpec(class_prompts={"Trouser": (f"a {REFUSAL_MARKER} trouser", "a photo of trousers")})
    summary = run(out, classes=["Trouser", "Bag"], prompt=spec)
    assert summary["missing"] == {} and summary["rejected"] == 2
    rows = assert_complete(out, classes=["Trouser", "Bag"])
    assert {r["prompt"] for r in rows if r["label"] == "Trouser"} == {"a photo of trousers"}
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert {(r["prompt"], r["code"]) for r in rejected} == {(f"a {REFUSAL_MARKER} trouser", "content_policy_violation")}
    # Sent once per slot of the first round (concurrently), never again once refused.
    assert sum(REFUSAL_MARKER in call["prompt"] for call in openai_server.calls) == 2

    # A class whose every prompt is refused gives up after its attempts and reports the gap.
    summary = run(tmp_path / "other", classes=[f"{REFUSAL_MARKER} thing", "Bag"], per_class=2)
    assert summary["missing"] == {f"{REFUSAL_MARKER} thing": 2}
    assert sum(REFUSAL_MARKER in call["prompt"] for call in openai_server.calls) == 2 + 2


def test_labels_are_kept_verbatim_in_safe_distinct_folders(openai_server, tmp_path):
    out = tmp_path / "out"
    labels = ["../../escape", "T-shirt/top", "t-shirt top", "/etc/passwd", "..", "Café"]
    run(out, classes=labels, per_class=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    rows = assert_complete(out, classes=labels, per_class=1)
    folders = {row["label"]: row["file_name"].split("/")[0] for row in rows}
    assert len(set(folders.values())) == len(labels)
    assert folders["../../escape"] == "escape" and folders["Café"] == "cafe"
    assert all((out / folder).resolve().parent == out.resolve() for folder in folders.values())
    assert sorted(load_dataset(out).classes) == sorted(labels)


def test_bad_key_and_quota_stop_the_run_with_nothing_half_written(openai_server, tmp_path, monkeypatch):
    out = tmp_path / "out"
    openai_server.quota_exhausted = True
    with pytest.raises(GenerationError, match="insufficient_quota"):
        run(out)
    assert (out / "metadata.jsonl").read_text() == "" and not list(out.rglob("*.png"))
    openai_server.quota_exhausted = False
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-the-right-one-000")
    with pytest.raises(GenerationError, match="401"):
        run(out)
    assert not list(out.rglob("*.png")) and not list(out.rglob("*.tmp"))


def test_the_api_key_never_reaches_a_file_or_message(openai_server, tmp_path, monkeypatch, capfd):
    canary = "sk-CANARY-do-not-leak-1234567890"
    openai_server.api_key = canary
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    out = tmp_path / "out"
    run(out, classes=["Bag", f"{REFUSAL_MARKER} thing"], per_class=2, progress=print)
    openai_server.api_key = "sk-the-server-wants-another-key"  # now the canary is a bad key, echoed by the server
    with pytest.raises(GenerationError) as caught:
        run(tmp_path / "second", classes=["Bag"], per_class=2)
    captured = capfd.readouterr()
    assert canary not in str(caught.value) + captured.out + captured.err
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(written) > 5
    assert not [path for path in written if canary.encode() in path.read_bytes()]


def test_a_folder_of_other_files_or_a_second_writer_is_refused(openai_server, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(ConfigError, match="did not write"):
        run(foreign)
    out = tmp_path / "out"
    out.mkdir()
    with directory_lock(out), pytest.raises(GenerationError, match="another synthaug process"):
        run(out)


_CHILD = """
import sys
from synthaug.generate import generate_dataset
generate_dataset(sys.argv[1], ["Trouser", "Bag"], 6, backend="openai", model="dall-e-2",
                 params={"size": "256x256"}, backend_options={"concurrency": 2})
"""


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_finishes_exactly(openai_server, tmp_path):
    out = tmp_path / "out"
    openai_server.latency = 0.15
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(out)], env=os.environ.copy())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        manifest = out / "metadata.jsonl"
        if manifest.exists() and manifest.read_text().count("\n") >= 3:
            break
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    time.sleep(0.3)  # let the server finish the calls that were in flight
    killed_at = len(manifest_rows(out))
    served_before_resume = openai_server.images_served
    assert 3 <= killed_at < 12
    # Lost to the kill: the calls in flight (2) and at most one answer not yet committed.
    assert served_before_resume - killed_at <= 3
    openai_server.latency = 0.0
    summary = run(out, classes=["Trouser", "Bag"], per_class=6, backend_options={"concurrency": 2})
    assert summary["reused"] == killed_at and summary["generated"] == 12 - killed_at
    assert openai_server.images_served - served_before_resume == 12 - killed_at  # nothing committed is paid again
    assert_complete(out, classes=["Trouser", "Bag"], per_class=6)


_CHILD_ON_A_FULL_DISK = """
import resource, signal, sys
from synthaug.generate import generate_dataset
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
generate_dataset(sys.argv[1], ["Trouser", "Bag"], 6, backend="openai", model="dall-e-2",
                 params={"size": "256x256"}, backend_options={"concurrency": 1})
"""


@pytest.mark.slow
def test_a_full_disk_stops_the_run_and_a_rerun_repairs_the_torn_manifest(openai_server, tmp_path):
    out = tmp_path / "out"
    # Every file is capped at 4000 bytes: the manifest fills up after a few rows, mid-line.
    child = subprocess.run(
        [sys.executable, "-c", _CHILD_ON_A_FULL_DISK, str(out)], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 1 and "GenerationError: cannot append" in child.stderr
    assert "free some space" in child.stderr
    manifest = (out / "metadata.jsonl").read_bytes()
    assert not manifest.endswith(b"\n")  # the last append was torn
    committed = manifest.count(b"\n")
    assert 1 <= committed < 12
    summary = run(out, classes=["Trouser", "Bag"], per_class=6)
    assert summary["reused"] == committed and summary["generated"] == 12 - committed
    assert_complete(out, classes=["Trouser", "Bag"], per_class=6)
