"""Reading the ENT: dashboard, week timetable, homework list (cahier de textes), inbox, a parent's children."""

from __future__ import annotations

import sqlite3
from typing import Annotated

from fastapi import APIRouter, Path, Query

from schoolsurge.platform.core import in_list
from schoolsurge.platform.routes.dependencies import CallerDep, PlatformDep
from schoolsurge.platform.schemas import (
    MAX_ID,
    Child,
    Children,
    ClassInfo,
    Dashboard,
    HomeworkItem,
    HomeworkList,
    Inbox,
    Lesson,
    Message,
    Timetable,
    VirtualClassSummary,
)

WEEK_OF = "2021-04-05"  # the surge week, Monday (Easter Monday, no lessons)
ChildQuery = Annotated[int | None, Query(ge=0, le=MAX_ID, description="parents: a child's roster index")]
ChildPath = Annotated[int, Path(ge=0, le=MAX_ID)]
MESSAGE_FIELDS = ("id", "class_id", "sender", "subject", "body", "sent_at")

router = APIRouter(tags=["ENT"])


def child_models(rows: list[sqlite3.Row]) -> list[Child]:
    return [
        Child(
            id=row["idx"],
            name=row["display_name"],
            class_id=row["class_id"],
            class_name=row["class_name"],
            level=row["level"],
        )
        for row in rows
    ]


@router.get("/api/dashboard", summary="Who I am, my classes or children, virtual classes to join")
def dashboard(platform: PlatformDep, caller: CallerDep) -> Dashboard:
    session = caller.session()
    account, connection = session.account, platform.connection()
    children = child_models(platform.children_of(account)) if account.role == "parent" else []
    class_ids = platform.class_ids_of(account)
    classes = [
        ClassInfo(id=class_id, name=name, level=level)
        for class_id, name, level in connection.execute(
            f"SELECT id, name, level FROM classes WHERE id IN ({in_list(class_ids)}) ORDER BY id", class_ids
        )
    ]
    virtual_classes = [
        VirtualClassSummary(id=virtual_class_id, class_id=class_id, title=title, status=status)
        for virtual_class_id, class_id, title, status in connection.execute(
            "SELECT id, class_id, title, status FROM virtual_classes"
            f" WHERE class_id IN ({in_list(class_ids)}) AND status != 'closed' ORDER BY id",
            class_ids,
        )
    ]
    return Dashboard(
        username=account.username,
        role=account.role,
        display_name=account.display_name,
        children=children,
        selected_child=session.selected_child,
        classes=classes,
        virtual_classes=virtual_classes,
    )


@router.get("/api/timetable", summary="The week's lessons of my class(es), or of a parent's child")
def timetable(platform: PlatformDep, caller: CallerDep, child: ChildQuery = None) -> Timetable:
    class_ids, _ = platform.reader_scope(caller.session(), child)
    rows = platform.connection().execute(
        f'SELECT day, start, "end", subject, class_id FROM lessons WHERE class_id IN ({in_list(class_ids)})'
        " ORDER BY day, start, class_id",
        class_ids,
    )
    lessons = [
        Lesson(day=day, start=start, end=end, subject=subject, class_id=class_id)
        for day, start, end, subject, class_id in rows
    ]
    return Timetable(week_of=WEEK_OF, lessons=lessons)


@router.get("/api/homework", summary="Homework of my class(es), or of a parent's child (cahier de textes)")
def homework(platform: PlatformDep, caller: CallerDep, child: ChildQuery = None) -> HomeworkList:
    class_ids, pupil_id = platform.reader_scope(caller.session(), child)
    rows = platform.connection().execute(
        "SELECT h.id, h.class_id, h.subject, h.due, h.text, s.submitted_at FROM homework h"
        " LEFT JOIN submissions s ON s.homework_id = h.id AND s.pupil_id = ?"
        f" WHERE h.class_id IN ({in_list(class_ids)}) ORDER BY h.due, h.id",
        [pupil_id if pupil_id is not None else -1, *class_ids],
    )
    return HomeworkList(
        homework=[
            HomeworkItem(id=homework_id, class_id=class_id, subject=subject, due=due, text=text, submitted_at=at)
            for homework_id, class_id, subject, due, text, at in rows
        ]
    )


@router.get("/api/messages", summary="Inbox: messages to my class(es) for people of my role")
def messages(platform: PlatformDep, caller: CallerDep) -> Inbox:
    account = caller.account()
    class_ids = platform.class_ids_of(account)
    rows = platform.connection().execute(
        f"SELECT {', '.join(MESSAGE_FIELDS)} FROM messages"
        f" WHERE audience = ? AND class_id IN ({in_list(class_ids)}) ORDER BY sent_at DESC, id",
        [account.role, *class_ids],
    )
    return Inbox(messages=[Message(**dict(zip(MESSAGE_FIELDS, row, strict=True))) for row in rows])


@router.get("/api/children", summary="Parents: my children and the one selected")
def children(platform: PlatformDep, caller: CallerDep) -> Children:
    session = caller.session()
    platform.require_role(session.account, "parent", "only parents have children here")
    return Children(selected_child=session.selected_child, children=child_models(platform.children_of(session.account)))


@router.post("/api/children/{child}/select", summary="Parents: switch to another of my children")
def select_child(platform: PlatformDep, caller: CallerDep, child: ChildPath) -> Children:
    session = caller.session()
    platform.require_role(session.account, "parent", "only parents have children here")
    platform.child(session.account, child)  # 404 unless it is one of theirs
    platform.connection().execute("UPDATE sessions SET selected_child = ? WHERE token_hash = ?", (child, session.key))
    return Children(selected_child=child, children=child_models(platform.children_of(session.account)))
