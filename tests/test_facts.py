"""docs/facts.md is the project's one source of real-world figures: everything cites it, nothing cites a brief
outside the repository, and every cited figure and section exists in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "docs" / "facts.md"
SCENARIOS = ROOT / "scenarios"
# Where a citation of the old brief must not survive: docs, scenarios, the README and all the code.
CHECKED = ("scenarios", "docs", "README.md", "locustfiles", "schoolsurge")
# A citation of the brief outside the repository: its path, or its name (upper case, unlike docs/facts.md).
OLD_BRIEF = re.compile(r"\.\./shared|FACTS\.md")
# Anywhere in the project: docs/facts.md#<section>, or facts.md#<section> in a link relative to docs/.
CITED_ANCHOR = re.compile(r"facts\.md#([\w-]+)")
SKIPPED_DIRS = {".git", ".venv", ".cache", "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules"}
SECTIONS = (
    "The event",
    "Population",
    "Timing and behaviour",
    "Observed overloads",
    "Capacity-planning formulas",
    "Load generators measured",
    "Assumptions of this project",
)


def text_files(path: Path) -> list[Path]:
    """The text files at or under a path, outside caches and environments."""
    candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    files = []
    for candidate in candidates:
        parts = set(candidate.relative_to(ROOT).parts)
        if parts & SKIPPED_DIRS or any(part.endswith(".egg-info") for part in parts):
            continue
        try:
            candidate.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary
        files.append(candidate)
    return files


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: the rendered text, lower case, punctuation dropped, spaces
    as hyphens (duplicates are numbered by `headings`)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link reads as its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(markdown: str) -> list[str]:
    """The headings of a Markdown text, outside fenced code blocks."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)):
            found.append(match.group(1))
    return found


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for heading in headings(markdown):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def scenario_groups() -> list[tuple[str, dict]]:
    return [
        (f"{path.stem}/{group['name']}", group)
        for path in sorted(SCENARIOS.glob("*.yaml"))
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    ]


def test_the_facts_file_has_its_sections() -> None:
    assert FACTS.is_file(), "docs/facts.md is missing"
    present = set(headings(FACTS.read_text(encoding="utf-8")))
    assert not [s for s in SECTIONS if s not in present], "docs/facts.md lacks sections"


@pytest.mark.parametrize("checked", CHECKED)
def test_nothing_cites_the_brief_outside_the_repository(checked: str) -> None:
    """(a) `../shared/FACTS.md` is not shipped with the project: cite docs/facts.md instead."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in text_files(ROOT / checked)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if OLD_BRIEF.search(line)
    ]
    assert not offenders, "cite docs/facts.md, not the brief outside the repository:\n" + "\n".join(offenders)


@pytest.mark.parametrize(("name", "group"), scenario_groups(), ids=[name for name, _ in scenario_groups()])
def test_every_scenario_source_names_the_facts_file(name: str, group: dict) -> None:
    """(b) A group's `source:` says where in docs/facts.md its population comes from."""
    assert "docs/facts.md" in group["source"], f"{name}: source {group['source']!r} does not name docs/facts.md"


@pytest.mark.parametrize(("name", "group"), scenario_groups(), ids=[name for name, _ in scenario_groups()])
def test_every_scenario_population_is_in_the_facts_file(name: str, group: dict) -> None:
    """(c) The figure a scenario uses is written in docs/facts.md, with thousands separators (869,300)."""
    written = f"{group['population']:,}"
    assert written in FACTS.read_text(encoding="utf-8"), f"{name}: population {written} is not in docs/facts.md"


def test_every_cited_section_exists() -> None:
    """(d) Every section of docs/facts.md cited in the project (docs/facts.md#<section>), and every #<section> link
    inside docs/facts.md, is a heading of docs/facts.md (GitHub's anchor)."""
    facts_text = FACTS.read_text(encoding="utf-8")
    known = anchors(facts_text)
    cited = {
        (f"{path.relative_to(ROOT)}:{number}", anchor)
        for path in text_files(ROOT)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        for anchor in CITED_ANCHOR.findall(line)
    }
    cited |= {
        (f"docs/facts.md:{number}", anchor)
        for number, line in enumerate(facts_text.splitlines(), start=1)
        for anchor in re.findall(r"\]\(#([\w-]+)\)", line)
    }
    assert cited, "nothing cites a section of docs/facts.md"
    missing = sorted(f"{where}: #{anchor}" for where, anchor in cited if anchor not in known)
    assert not missing, "no such heading in docs/facts.md:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("The event", "the-event"),
        ("Capacity-planning formulas", "capacity-planning-formulas"),
        ("Roster and families (`schoolsurge.accounts`)", "roster-and-families-schoolsurgeaccounts"),
        ("Timing and behaviour", "timing-and-behaviour"),
    ],
)
def test_github_slugs(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug
