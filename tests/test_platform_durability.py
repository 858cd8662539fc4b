"""Durability and isolation of the platform's database files, with real processes killed for real."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Client, login, pupil_of_class

from schoolsurge.accounts import Roster
from schoolsurge.errors import PlatformStartError
from schoolsurge.platform.process import PlatformProcess

SEED, SIZE, COST = 11, 60, 4


def test_acknowledged_homework_survives_kill_9(tmp_path: Path, platform_cache: Path) -> None:
    db, log = tmp_path / "durable.sqlite3", tmp_path / "platform.log"
    roster = Roster(SEED, SIZE)
    pupil_idx = pupil_of_class(roster, 2, 3)
    options = {"seed": SEED, "size": SIZE, "hash_cost": COST, "db": db, "cache_dir": platform_cache}
    first = PlatformProcess(**options, log_path=log, startup_timeout=60).start()
    try:
        pupil, _ = login(first.base_url, roster, "student", pupil_idx)
        homework_id = pupil.get("/api/homework").json()["homework"][1]["id"]
        reply = pupil.post(f"/api/homework/{homework_id}/submissions", body={"text": "Rendu avant la panne."})
        assert reply.status == 201
        acknowledged = reply.json()
        teacher, _ = login(first.base_url, roster, "teacher", roster.main_class_of_teacher(2))
        posted = teacher.post(
            "/api/classes/2/homework", body={"subject": "SVT", "due": "2021-04-09", "text": "Schéma de la cellule."}
        )
        assert posted.status == 201
    finally:
        first.kill()  # SIGKILL to the whole process group: no shutdown, no checkpoint

    with PlatformProcess(**options, log_path=log, startup_timeout=60) as second:
        assert f"resuming database {db}" in log.read_text()
        pupil, _ = login(second.base_url, roster, "student", pupil_idx)
        stored = pupil.get(f"/api/homework/{homework_id}/submissions").json()["submissions"]
        assert stored == [acknowledged]
        homework = {h["id"]: h for h in pupil.get("/api/homework").json()["homework"]}
        assert homework[homework_id]["submitted_at"] == acknowledged["submitted_at"]
        assert posted.json()["id"] in homework


def test_servers_from_the_same_cached_seed_keep_their_own_sessions(tmp_path: Path, platform_cache: Path) -> None:
    roster = Roster(SEED, SIZE)
    options = {"seed": SEED, "size": SIZE, "hash_cost": COST, "cache_dir": platform_cache, "startup_timeout": 60}
    with PlatformProcess(**options, log_path=tmp_path / "a.log") as a, PlatformProcess(**options) as b:
        assert a.db != b.db
        on_a, _ = login(a.base_url, roster, "student", 1)
        on_b, _ = login(b.base_url, roster, "student", 1)
        stolen = Client(b.base_url, cookies=dict(on_a.cookies))
        assert stolen.get("/api/dashboard").status == 401  # a's session means nothing to b
        assert on_a.get("/api/dashboard").status == 200 and on_b.get("/api/dashboard").status == 200
        # Both started from the one cached seed: nothing was seeded again.
        assert "reusing cached database" in (tmp_path / "a.log").read_text()
        assert len(list(platform_cache.glob(f"platform-{SEED}-{SIZE}-{COST}.sqlite3"))) == 1
    assert not a.db.exists() and not b.db.exists()  # their runtime copies went with them


def test_one_server_per_database_file(tmp_path: Path, platform_cache: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    options = {"seed": SEED, "size": SIZE, "hash_cost": COST, "cache_dir": platform_cache, "db": db}
    with PlatformProcess(**options, startup_timeout=60):
        second = PlatformProcess(**options, startup_timeout=60)
        with pytest.raises(PlatformStartError, match="another platform is serving"):
            second.start()
