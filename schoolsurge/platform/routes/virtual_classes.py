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
from schoolsurge.platform.routes.dependencies import CallerDep, PlatformDep
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

VirtualClassId = Annotated[int, Path(ge=0, le=MAX_ID)]

router = APIRouter(tags=["virtual classes"])


def visible_virtual_class(platform: Platform, virtual_class_id: int, account: Account) -> sqlite3.Row:
    """The virtual class, if the account is its teacher or a pupil of its class; else 404, as if it did not
    exist (it is none of their business)."""
    virtual_class = (
        platform.connection()
        .execute(
            "SELECT id, class_id, teacher_id, title, status FROM virtual_classes WHERE id = ?", (virtual_class_id,)
        )
        .fetchone()
    )
    is_pupil = virtual_class is not None and account.role == "student" and account.class_id == virtual_class["class_id"]
    if virtual_class is None or (account.id != virtual_class["teacher_id"] and not is_pupil):
        raise HTTPException(404, "no such virtual class")
    return virtual_class


def owned_virtual_class(platform: Platform, virtual_class_id: int, account: Account) -> sqlite3.Row:
    """The virtual class, if the account is the teacher who created it; 403 for its pupils, 404 for others."""
    virtual_class = visible_virtual_class(platform, virtual_class_id, account)
    if account.id != virtual_class["teacher_id"]:
        raise HTTPException(403, "only the teacher who created this virtual class may do this")
    return virtual_class


def require_not_closed(virtual_class: sqlite3.Row) -> None:
    # 410, not 409: a lesson the teacher ended is the end of it for a pupil's client, while 409 (full) is a refusal.
    if virtual_class["status"] == "closed":
        raise HTTPException(410, "virtual class is closed")


def as_model(virtual_class: sqlite3.Row, status: str | None = None) -> VirtualClass:
    return VirtualClass(
        id=virtual_class["id"],
        class_id=virtual_class["class_id"],
        title=virtual_class["title"],
        status=status or virtual_class["status"],
        join_url=f"/api/virtual-classes/{virtual_class['id']}/join",
    )


def headcount(connection: sqlite3.Connection, virtual_class_id: int) -> tuple[int, int]:
    """(people in the class, people in its waiting room), those who left not counted."""
    joined, waiting = connection.execute(
        "SELECT COUNT(admitted_at), COUNT(*) - COUNT(admitted_at) FROM vc_participants"
        " WHERE vc_id = ? AND left_at IS NULL",
        (virtual_class_id,),
    ).fetchone()
    return joined, waiting


@router.post("/api/virtual-classes", status_code=201, summary="Teachers: create a virtual class (waiting room)")
def create(platform: PlatformDep, caller: CallerDep, body: NewVirtualClass) -> VirtualClass:
    account = caller.account()
    platform.require_teacher_of(account, body.class_id)
    virtual_class = (
        platform.connection()
        .execute(
            "INSERT INTO virtual_classes (class_id, teacher_id, title, status, created_at)"
            " VALUES (?, ?, ?, 'scheduled', ?) RETURNING id, class_id, teacher_id, title, status",
            (body.class_id, account.id, body.title, time.time()),
        )
        .fetchone()
    )
    platform.metrics.vc_created.inc()
    return as_model(virtual_class)


@router.post("/api/virtual-classes/{id}/open", summary="Teachers: open the class; the waiting room comes in")
def open_class(platform: PlatformDep, caller: CallerDep, id: VirtualClassId) -> VirtualClass:
    virtual_class = owned_virtual_class(platform, id, caller.account())
    require_not_closed(virtual_class)
    connection, now = platform.connection(), time.time()
    with db.transaction(connection):
        connection.execute("UPDATE virtual_classes SET status = 'open', opened_at = ? WHERE id = ?", (now, id))
        connection.execute(
            "UPDATE vc_participants SET admitted_at = ? WHERE vc_id = ? AND left_at IS NULL AND admitted_at IS NULL",
            (now, id),
        )
    return as_model(virtual_class, "open")


@router.post("/api/virtual-classes/{id}/join", summary="Pupils: join (the waiting room until it opens)")
def join(platform: PlatformDep, caller: CallerDep, id: VirtualClassId) -> JoinStatus:
    account = caller.account()
    platform.require_role(account, "student", "only pupils of the class join it")
    connection, now = platform.connection(), time.time()
    room_capacity = platform.settings.room_capacity
    with db.transaction(connection):
        # The class is read inside the transaction: read before it, a teacher opening or closing it meanwhile
        # would put the pupil in a closed class, or leave them waiting in an open one.
        virtual_class = visible_virtual_class(platform, id, account)
        require_not_closed(virtual_class)
        admitted_at = now if virtual_class["status"] == "open" else None
        present = connection.execute(
            "SELECT 1 FROM vc_participants WHERE vc_id = ? AND account_id = ? AND left_at IS NULL",
            (id, account.id),
        ).fetchone()
        joined, waiting = headcount(connection, id)
        if present is None and joined + waiting + 1 >= room_capacity:  # + 1: the teacher
            raise HTTPException(409, f"virtual class is full ({room_capacity} people)")
        connection.execute(
            "INSERT INTO vc_participants (vc_id, account_id, joined_at, admitted_at, last_seen)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (vc_id, account_id) DO UPDATE SET left_at = NULL,"
            " admitted_at = COALESCE(vc_participants.admitted_at, excluded.admitted_at),"
            " last_seen = excluded.last_seen",
            (id, account.id, now, admitted_at, now),
        )
        joined, waiting = headcount(connection, id)
    platform.metrics.vc_joins.inc()
    return JoinStatus(status="joined" if admitted_at else "waiting", participants=joined, waiting=waiting)


@router.post("/api/virtual-classes/{id}/heartbeat", summary="Still here (teacher, or a pupil who joined)")
def heartbeat(platform: PlatformDep, caller: CallerDep, id: VirtualClassId) -> Heartbeat:
    account = caller.account()
    virtual_class = visible_virtual_class(platform, id, account)
    require_not_closed(virtual_class)
    if account.id != virtual_class["teacher_id"]:
        updated = (
            platform.connection()
            .execute(
                "UPDATE vc_participants SET last_seen = ? WHERE vc_id = ? AND account_id = ? AND left_at IS NULL",
                (time.time(), id, account.id),
            )
            .rowcount
        )
        if not updated:
            # The teacher leaving closes the class and marks everyone left at once; if that happened since the
            # class was read above, it is the lesson's end (410), not a pupil who never joined (403).
            require_not_closed(visible_virtual_class(platform, id, account))
            raise HTTPException(403, "join the virtual class first")
    return Heartbeat(status="ok", virtual_class=virtual_class["status"])


@router.get("/api/virtual-classes/{id}/participants", summary="Teachers: who is in the class or waiting")
def participants(platform: PlatformDep, caller: CallerDep, id: VirtualClassId) -> Participants:
    virtual_class = owned_virtual_class(platform, id, caller.account())
    rows = platform.connection().execute(
        "SELECT a.idx, a.display_name, vp.admitted_at, vp.left_at FROM vc_participants vp"
        " JOIN accounts a ON a.id = vp.account_id WHERE vp.vc_id = ? ORDER BY a.idx",
        (id,),
    )
    people = [
        Participant(id=pupil, name=name, state="left" if left_at else "in_class" if admitted_at else "waiting")
        for pupil, name, admitted_at, left_at in rows
    ]
    return Participants(virtual_class_id=id, status=virtual_class["status"], participants=people)


@router.post("/api/virtual-classes/{id}/leave", summary="Leave; the teacher leaving closes the class")
def leave(platform: PlatformDep, caller: CallerDep, id: VirtualClassId) -> Status:
    account = caller.account()
    virtual_class = visible_virtual_class(platform, id, account)
    connection, now = platform.connection(), time.time()
    if account.id == virtual_class["teacher_id"]:
        with db.transaction(connection):
            connection.execute("UPDATE virtual_classes SET status = 'closed' WHERE id = ?", (id,))
            connection.execute("UPDATE vc_participants SET left_at = ? WHERE vc_id = ? AND left_at IS NULL", (now, id))
    else:
        connection.execute(
            "UPDATE vc_participants SET left_at = ? WHERE vc_id = ? AND account_id = ? AND left_at IS NULL",
            (now, id, account.id),
        )
    return Status(status="left")
