"""The README's figures and screenshots, generated from the real commands (`make docs`), never typed.

    .venv/bin/python -m benchmarks.docs              # plan tables, then a real run and sweep: console, screenshots
    .venv/bin/python -m benchmarks.docs --plans-only # only the plan tables (seconds)

Each generated part of README.md sits between two marker comments, `<!-- docs:NAME -->` and `<!-- /docs:NAME -->`;
what lies between them is replaced, nothing else is touched. The parts:

    plan-first-day   the default run against the national morning (`schoolsurge plan scenarios/first-day-2021.yaml`)
    plan-everyone    the worst case's national figures and fleet (`schoolsurge plan scenarios/everyone.yaml`)
    progress         a progress line of `make surge` at the morning's peak (a real run of the first day)
    console          the last lines `make surge` prints (the same run)

and docs/screenshots/: a run report's first screen and whole page, a sweep report's first screen, taken with
headless Chromium (benchmarks/screenshots.py). tests/test_readme.py fails when the plan tables differ from what
`schoolsurge plan` prints.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIRST_DAY = "scenarios/first-day-2021.yaml"
EVERYONE = "scenarios/everyone.yaml"
SCREEN_WIDTH, SCREEN_HEIGHT = 1400, 900  # the first screen a capacity planner sees
PROGRESS_LINE = re.compile(r"^\[(\d\d:\d\d|step [^\]]*)\] pool")
PEAK_PROGRESS = "[08:2"  # the progress line shown: the first in the minutes after the morning's peak of logins


def plan(scenario: str) -> dict[str, Any]:
    """`schoolsurge plan SCENARIO --json`, as the command prints it."""
    done = subprocess.run(
        [sys.executable, "-m", "schoolsurge", "plan", scenario, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def _millions(value: float) -> str:
    return f"{value / 1e6:.3g}M"


def plan_first_day_table(first_day: dict[str, Any]) -> str:
    """The default run (scale, speed) against the national morning it stands for."""
    national, run = first_day["national"], first_day["run"]
    hours = (first_day["run"]["duration_s"] * run["speed"]) / 3600
    return "\n".join(
        [
            f"| figure | run / national | {first_day['scenario']} default (scale {run['scale']:g}, "
            f"speed {run['speed']:g}) |",
            "|---|---|---|",
            f"| people, open sessions, memory | × scale | {run['people']:,} people of "
            f"{_millions(national['total_people'])}; {run['peak_concurrent_sessions']:,.0f} open sessions of "
            f"{_millions(national['peak_concurrent_sessions'])} |",
            f"| logins/s, requests/s, bot attempts/s | × scale × speed = the **load fraction** | "
            f"{run['load_fraction']:.2g}: {run['peak_arrivals_per_s']:.3g} logins/s of "
            f"{national['peak_arrivals_per_s']:,.0f}/s |",
            f"| duration | ÷ speed | {hours:g} hours in {run['duration_s']:g} s |",
        ]
    )


def plan_everyone_table(everyone: dict[str, Any]) -> str:
    """The worst case's national figures and the Locust fleet it needs at full scale."""
    national, fleet, window = everyone["national"], everyone["fleet"], everyone["window"]
    return "\n".join(
        [
            "| national | |",
            "|---|---|",
            f"| people logging in {window['start']}–{window['end']} | {national['total_people']:,} |",
            f"| peak logins | {national['peak_arrivals_per_s']:,.0f}/s in the minute {national['peak_at']} |",
            f"| peak open sessions | {national['peak_concurrent_sessions']:,} at {national['peak_concurrent_at']} |",
            f"| peak requests | {national['peak_requests_per_s']:,}/s at {national['peak_requests_at']} |",
            f"| virtual classes | {national['virtual_classes']:,} opened, "
            f"{national['virtual_class_pupils'] / 1e6:.1f}M pupils joining, "
            f"{national['peak_in_virtual_class']:,} in a class at {national['peak_in_virtual_class_at']} |",
            f"| Locust fleet at full scale | {fleet['workers_full_scale']:,} worker processes, "
            f"{fleet['memory_full_scale_mb'] / 1000:.1f} GB |",
        ]
    )


def plan_blocks() -> dict[str, str]:
    return {
        "plan-first-day": plan_first_day_table(plan(FIRST_DAY)),
        "plan-everyone": plan_everyone_table(plan(EVERYONE)),
    }


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- docs:{name} -->", f"<!-- /docs:{name} -->"


def block(text: str, name: str) -> str:
    """What README holds between the markers of `name` (without the newlines next to them)."""
    start, end = _markers(name)
    if text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(f"README.md: expected one {start} and one {end}")
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


def replace_block(text: str, name: str, content: str) -> str:
    start, end = _markers(name)
    block(text, name)  # both markers there, once
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    return f"{before}{start}\n{content}\n{end}{after}"


def console_examples(output: str, run_dir: Path) -> dict[str, str]:
    """From a run's console output: a progress line at the morning's peak ("progress"), and the run's last lines,
    after Locust's tables and the progress lines ("console"); the run directory shown as under reports/."""
    lines = [line.rstrip() for line in output.splitlines() if not line.startswith("schoolsurge: ")]
    progress = [i for i, line in enumerate(lines) if PROGRESS_LINE.match(line)]
    blank = [i for i, line in enumerate(lines) if not line.strip()]
    tail = [line for line in lines[max([*progress, *blank, -1]) + 1 :] if line.strip()]
    peak = next(
        (lines[i] for i in progress if lines[i].startswith(PEAK_PROGRESS)), lines[progress[-1]] if progress else ""
    )
    return {
        "progress": f"```\n{peak}\n```",
        "console": "```\n" + "\n".join(tail).replace(str(run_dir.parent), "reports") + "\n```",
    }


def _run(command: list[str], reports: Path) -> tuple[str, Path]:
    """Run a schoolsurge command against the embedded platform; its output and its run directory."""
    done = subprocess.run(
        [sys.executable, "-m", "schoolsurge", *command, "--reports-dir", str(reports)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    runs = sorted(p for p in reports.iterdir() if p.is_dir() and (p / "report.html").exists())
    if not runs:
        raise RuntimeError(f"`schoolsurge {' '.join(command)}` wrote no report:\n{done.stdout[-3000:]}")
    return done.stdout, runs[-1]


def screenshots(run_dir: Path, sweep_dir: Path) -> list[Path]:
    from benchmarks.screenshots import SCREENSHOTS, Chromium

    taken = []
    for report, name, whole in (
        (run_dir, "first-day-top", False),
        (run_dir, "first-day", True),
        (sweep_dir, "capacity-undersized-top", False),
    ):
        with Chromium(width=SCREEN_WIDTH, height=SCREEN_HEIGHT) as browser:
            check = browser.open(report / "report.html")
            if not check.ok:
                raise RuntimeError(check.summary())
            if check.width > SCREEN_WIDTH:  # a table or chart wider than the screen: the page scrolls sideways
                raise RuntimeError(f"{report / 'report.html'} is {check.width} px wide, more than {SCREEN_WIDTH}")
            taken.append(browser.screenshot(SCREENSHOTS / f"{name}.png", whole_page=whole))
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate README's figures and docs/screenshots/")
    parser.add_argument("--plans-only", action="store_true", help="only the plan tables (no run, no screenshots)")
    args = parser.parse_args(argv)
    text = README.read_text()
    for name, content in plan_blocks().items():
        text = replace_block(text, name, content)
    README.write_text(text)
    print("README.md: plan tables written")
    if args.plans_only:
        return 0
    with tempfile.TemporaryDirectory(prefix="schoolsurge-docs-") as scratch:
        reports = Path(scratch)
        output, run_dir = _run(["run", FIRST_DAY], reports / "run")
        _, sweep_dir = _run(["capacity", FIRST_DAY], reports / "sweep")
        text = README.read_text()
        for name, content in console_examples(output, run_dir).items():
            text = replace_block(text, name, content)
        README.write_text(text)
        print("README.md: console example written")
        for path in screenshots(run_dir, sweep_dir):
            print(f"screenshot: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
