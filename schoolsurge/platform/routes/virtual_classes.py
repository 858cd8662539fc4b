"""Virtual classes ("Ma classe à la maison"): a teacher creates one for a class (its waiting room opens), opens
it, sees who joined; pupils of the class join (waiting until it opens), send heartbeats, leave. A room holds
at most `room_capacity` people, teacher included. The teacher leaving ends the lesson."""

from __future__ import annotations

import sqlite3
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from schoolsurge.platform import db
from schoolsurge.platform.core import Account, Platform
from schoolsurge.platform.routes.common import SessionCookie
from schoolsurge.platform.schemas import (
    MAX_ID,
    Heartbeat,
    JoinStatus,
    NewVirtualClass,
    Participant,
    Participants,
    Status,
    VirtualClass,
)

VcId = Annotated[int, Path(ge=0, le=MAX_ID)]


def router(p: Platform) -> APIRouter:
    api = APIRouter(tags=["virtual classes"])

    def load(vc_id: int, account: Account) -> sqlite3.Row:
        """The virtual class, if the account is its teacher or a pupil of its class; else 404, as if it did not
        exist (it is none of their business)."""
        vc = (
            p.conn()
            .execute("SELECT id, class_id, teacher_id, title, status FROM virtual_classes WHERE id = ?", (vc_id,))
            .fetchone()
        )
        is_pupil = vc is not None and account.role == "student" and account.class_id == vc["class_id"]
        if vc is None or (account.id != vc["teacher_id"] and not is_pupil):
            raise HTTPException(404, "no such virtual class")
        return vc

    def owned(vc_id: int, account: Account) -> sqlite3.Row:
        vc = load(vc_id, account)
        if account.id != vc["teacher_id"]:
            raise HTTPException(403, "only the teacher who created this virtual class may do this")
        return vc

    def as_model(vc: sqlite3.Row, status: str | None = None) -> VirtualClass:
        return VirtualClass(
            id=vc["id"],
            class_id=vc["class_id"],
            title=vc["title"],
            status=status or vc["status"],
            join_url=f"/api/virtual-classes/{vc['id']}/join",
        )

    def counts(c: sqlite3.Connection, vc_id: int) -> tuple[int, int]:
        joined, waiting = c.execute(
            "SELECT COUNT(admitted_at), COUNT(*) - COUNT(admitted_at) FROM vc_participants"
            " WHERE vc_id = ? AND left_at IS NULL",
            (vc_id,),
        ).fetchone()
        return joined, waiting

    @api.post("/api/virtual-classes", status_code=201, summary="Teachers: create a virtual class (waiting room)")
    def create(body: NewVirtualClass, ent_session: SessionCookie = None) -> VirtualClass:
        account = p.account(ent_session)
        p.require_teacher_of(account, body.class_id)
        vc = (
            p.conn()
            .execute(
                "INSERT INTO virtual_classes (class_id, teacher_id, title, status, created_at)"
                " VALUES (?, ?, ?, 'scheduled', ?) RETURNING id, class_id, teacher_id, title, status",
                (body.class_id, account.id, body.title, time.time()),
            )
            .fetchone()
        )
        p.metrics.vc_created.inc()
        return as_model(vc)

    @api.post("/api/virtual-classes/{id}/open", summary="Teachers: open the class; the waiting room comes in")
    def open_class(id: VcId, ent_session: SessionCookie = None) -> VirtualClass:
        vc = owned(id, p.account(ent_session))
        if vc["status"] == "closed":
            raise HTTPException(409, "virtual class is closed")
        c, now = p.conn(), time.time()
        with db.transaction(c):
            c.execute("UPDATE virtual_classes SET status = 'open', opened_at = ? WHERE id = ?", (now, id))
            c.execute(
                "UPDATE vc_participants SET admitted_at = ?"
                " WHERE vc_id = ? AND left_at IS NULL AND admitted_at IS NULL",
                (now, id),
            )
        return as_model(vc, "open")

    @api.post("/api/virtual-classes/{id}/join", summary="Pupils: join (the waiting room until it opens)")
    def join(id: VcId, ent_session: SessionCookie = None) -> JoinStatus:
        account = p.account(ent_session)
        p.require_role(account, "student", "only pupils of the class join it")
        vc = load(id, account)
        if vc["status"] == "closed":
            raise HTTPException(409, "virtual class is closed")
        c, now = p.conn(), time.time()
        admitted = now if vc["status"] == "open" else None
        with db.transaction(c):
            present = c.execute(
                "SELECT 1 FROM vc_participants WHERE vc_id = ? AND account_id = ? AND left_at IS NULL",
                (id, account.id),
            ).fetchone()
            joined, waiting = counts(c, id)
            if present is None and joined + waiting + 1 >= p.settings.room_capacity:  # + 1: the teacher
                raise HTTPException(409, f"virtual class is full ({p.settings.room_capacity} people)")
            c.execute(
                "INSERT INTO vc_participants (vc_id, account_id, joined_at, admitted_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (vc_id, account_id) DO UPDATE SET left_at = NULL,"
                " admitted_at = COALESCE(vc_participants.admitted_at, excluded.admitted_at),"
                " last_seen = excluded.last_seen",
                (id, account.id, now, admitted, now),
            )
            joined, waiting = counts(c, id)
        p.metrics.vc_joins.inc()
        return JoinStatus(status="joined" if admitted else "waiting", participants=joined, waiting=waiting)

    @api.post("/api/virtual-classes/{id}/heartbeat", summary="Still here (teacher, or a pupil who joined)")
    def heartbeat(id: VcId, ent_session: SessionCookie = None) -> Heartbeat:
        account = p.account(ent_session)
        vc = load(id, account)
        if vc["status"] == "closed":
            raise HTTPException(409, "virtual class is closed")
        if account.id != vc["teacher_id"]:
            updated = (
                p.conn()
                .execute(
                    "UPDATE vc_participants SET last_seen = ? WHERE vc_id = ? AND account_id = ? AND left_at IS NULL",
                    (time.time(), id, account.id),
                )
                .rowcount
            )
            if not updated:
                raise HTTPException(403, "join the virtual class first")
        return Heartbeat(status="ok", virtual_class=vc["status"])

    @api.get("/api/virtual-classes/{id}/participants", summary="Teachers: who is in the class or waiting")
    def participants(id: VcId, ent_session: SessionCookie = None) -> Participants:
        vc = owned(id, p.account(ent_session))
        rows = p.conn().execute(
            "SELECT a.idx, a.display_name, vp.admitted_at, vp.left_at FROM vc_participants vp"
            " JOIN accounts a ON a.id = vp.account_id WHERE vp.vc_id = ? ORDER BY a.idx",
            (id,),
        )
        people = [
            Participant(id=idx, name=name, state="left" if left else "in_class" if admitted else "waiting")
            for idx, name, admitted, left in rows
        ]
        return Participants(virtual_class_id=id, status=vc["status"], participants=people)

    @api.post("/api/virtual-classes/{id}/leave", summary="Leave; the teacher leaving closes the class")
    def leave(id: VcId, ent_session: SessionCookie = None) -> Status:
        account = p.account(ent_session)
        vc = load(id, account)
        c, now = p.conn(), time.time()
        if account.id == vc["teacher_id"]:
            with db.transaction(c):
                c.execute("UPDATE virtual_classes SET status = 'closed' WHERE id = ?", (id,))
                c.execute("UPDATE vc_participants SET left_at = ? WHERE vc_id = ? AND left_at IS NULL", (now, id))
        else:
            c.execute(
                "UPDATE vc_participants SET left_at = ? WHERE vc_id = ? AND account_id = ? AND left_at IS NULL",
                (now, id, account.id),
            )
        return Status(status="left")

    return api
