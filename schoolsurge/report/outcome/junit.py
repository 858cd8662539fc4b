"""The verdicts of a run as JUnit XML (`--junit FILE`), for CI systems that show test results: one test case
per service-level objective and one for the run's validity (a generator- or machine-bound run is invalid)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from schoolsurge.files import atomic_file
from schoolsurge.report.outcome.verdicts import Verdict


def junit_xml(suite: str, verdicts: list[Verdict], invalid_reason: str | None) -> str:
    root = ET.Element("testsuites")
    cases = [(f"run is valid ({suite})", invalid_reason)]
    cases += [(v.objective, None if v.met else v.line()) for v in verdicts]
    failures = sum(1 for _, failure in cases if failure is not None)
    element = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures), errors="0", skipped="0"
    )
    for name, failure in cases:
        case = ET.SubElement(element, "testcase", classname=f"schoolsurge.{suite}", name=name)
        if failure is not None:
            ET.SubElement(case, "failure", message=failure, type="invalid" if name.startswith("run is") else "slo")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: Path, suite: str, verdicts: list[Verdict], invalid_reason: str | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as handle:
        handle.write(junit_xml(suite, verdicts, invalid_reason))
    return path
