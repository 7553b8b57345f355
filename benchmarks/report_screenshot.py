"""Open a study report in headless Chromium and save a screenshot of it.

Usage::

    python benchmarks/report_screenshot.py RUN_DIR/report.html [--out report.png] [--height 2000]

Checks that the report renders in a real browser with the network off (it must be
self-contained) and leaves a PNG to look at. Uses Debian's ``/usr/bin/chromium`` (or
``$CHROMIUM``); prints the screenshot's path and the time taken.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def chromium_binary() -> str:
    """The Chromium executable: ``$CHROMIUM``, else ``chromium`` on the PATH."""
    candidate = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(candidate).exists():
        sys.exit("error: Chromium not found; install Debian's `chromium` package or set $CHROMIUM")
    return candidate


def screenshot(report: Path, out: Path, width: int = 1280, height: int = 2000, timeout: float = 120.0) -> float:
    """Render ``report`` headless into ``out`` (PNG); returns the seconds it took."""
    with tempfile.TemporaryDirectory(prefix="synthaug-chromium-") as profile:
        command = [
            chromium_binary(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            f"--window-size={width},{height}",
            report.resolve().as_uri(),
        ]
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        seconds = time.perf_counter() - started
    if completed.returncode != 0 or not out.is_file():
        sys.exit(f"error: chromium exited with {completed.returncode}: {completed.stderr.strip()[-500:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the report.html to open")
    parser.add_argument("--out", type=Path, default=Path("report.png"), help="screenshot file (PNG)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    arguments = parser.parse_args()
    if not arguments.report.is_file():
        sys.exit(f"error: {arguments.report}: no such file")
    seconds = screenshot(arguments.report, arguments.out, arguments.width, arguments.height)
    print(f"screenshot {arguments.out} ({arguments.width}x{arguments.height}) in {seconds:.1f} s")


if __name__ == "__main__":
    main()
