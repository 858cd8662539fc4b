"""The run report's "Run" table: what ran (scenario, target, scale and speed, seed, when, how it ended) and its
totals, from the manifest and the run's figures."""

from __future__ import annotations

import pandas as pd

from schoolsurge.report.load.run_data import RunData


def _peak(column: pd.Series) -> int:
    peak = pd.to_numeric(column, errors="coerce").max()
    return int(peak) if pd.notna(peak) else 0


def _duration(started_unix: float | None, ended_unix: float | None) -> str:
    if started_unix is None or ended_unix is None or ended_unix < started_unix:
        return "?"
    seconds = round(ended_unix - started_unix)
    return f"{seconds:,} s" + (f" ({seconds // 60} min {seconds % 60:02d} s)" if seconds >= 60 else "")


def known(value: object, unknown: str = "?") -> str:
    return unknown if value is None else str(value)


def run_facts(data: RunData) -> list[tuple[str, str]]:
    manifest = data.manifest
    scale, speed, fraction = manifest.scale, manifest.speed, manifest.load_fraction
    facts = [
        ("scenario", f"{known(manifest.scenario)} ({known(manifest.scenario_file)})"),
        ("target", known(manifest.target) + (" (embedded reference platform)" if manifest.embedded else "")),
        ("single sign-on", {"cas": "CAS", "oidc": "OpenID Connect"}.get(manifest.sso or "cas", "?")),
        ("scale (fraction of people)", f"{scale:g}" if scale else "?"),
        ("speed (time compression)", f"{speed:g}x" if speed else "?"),
        ("load fraction (scale x speed)", f"{fraction:.4g} of the national request rate" if fraction else "?"),
        ("seed", known(manifest.seed)),
        ("started / ended (UTC)", f"{known(manifest.started_at)} / {known(manifest.ended_at)}"),
        ("duration", _duration(manifest.started_unix, manifest.ended_unix)),
        ("status", known(manifest.status, "unknown")),
    ]
    totals = data.totals()
    facts.append(
        (
            f"requests / failures / logins ({totals.window})",
            f"{totals.requests:,} / {totals.failures:,} / {totals.logins:,}",
        )
    )
    if data.sessions is not None:
        s = data.sessions
        facts.append(
            (
                "people scheduled / started / late / dropped / gave up",
                " / ".join(f"{int(s[c].sum()):,}" for c in ("scheduled", "started", "late", "dropped", "abandoned")),
            )
        )
        facts.append(
            (
                "peak agent pool / peak people in a session",
                f"{_peak(s['pool_size']):,} / {_peak(s['active_sessions']):,}",
            )
        )
        bots = int(s["bot_login_attempts"].sum())
        if bots:
            facts.append(("bot login attempts (counted apart)", f"{bots:,}"))
    return facts
