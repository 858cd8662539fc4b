"""Reading the ENT: dashboard, week timetable, homework list (cahier de textes), inbox, a parent's children."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from schoolsurge.platform.core import Platform, in_list
from schoolsurge.platform.routes.common import SessionCookie
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


def router(p: Platform) -> APIRouter:
    api = APIRouter(tags=["ENT"])

    def child_models(rows: list) -> list[Child]:
        return [
            Child(
                id=r["idx"],
                name=r["display_name"],
                class_id=r["class_id"],
                class_name=r["class_name"],
                level=r["level"],
            )
            for r in rows
        ]

    @api.get("/api/dashboard", summary="Who I am, my classes or children, virtual classes to join")
    def dashboard(ent_session: SessionCookie = None) -> Dashboard:
        session = p.session(ent_session)
        account, c = session.account, p.conn()
        children = child_models(p.children_of(account)) if account.role == "parent" else []
        ids = p.class_ids_of(account)
        classes = [
            ClassInfo(id=r[0], name=r[1], level=r[2])
            for r in c.execute(f"SELECT id, name, level FROM classes WHERE id IN ({in_list(ids)}) ORDER BY id", ids)
        ]
        virtual_classes = [
            VirtualClassSummary(id=r[0], class_id=r[1], title=r[2], status=r[3])
            for r in c.execute(
                "SELECT id, class_id, title, status FROM virtual_classes"
                f" WHERE class_id IN ({in_list(ids)}) AND status != 'closed' ORDER BY id",
                ids,
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

    @api.get("/api/timetable", summary="The week's lessons of my class(es), or of a parent's child")
    def timetable(child: ChildQuery = None, ent_session: SessionCookie = None) -> Timetable:
        ids, _ = p.reader_scope(p.session(ent_session), child)
        rows = p.conn().execute(
            f'SELECT day, start, "end", subject, class_id FROM lessons WHERE class_id IN ({in_list(ids)})'
            " ORDER BY day, start, class_id",
            ids,
        )
        lessons = [Lesson(day=d, start=s, end=e, subject=sub, class_id=cid) for d, s, e, sub, cid in rows]
        return Timetable(week_of=WEEK_OF, lessons=lessons)

    @api.get("/api/homework", summary="Homework of my class(es), or of a parent's child (cahier de textes)")
    def homework(child: ChildQuery = None, ent_session: SessionCookie = None) -> HomeworkList:
        ids, pupil = p.reader_scope(p.session(ent_session), child)
        rows = p.conn().execute(
            "SELECT h.id, h.class_id, h.subject, h.due, h.text, s.submitted_at FROM homework h"
            " LEFT JOIN submissions s ON s.homework_id = h.id AND s.pupil_id = ?"
            f" WHERE h.class_id IN ({in_list(ids)}) ORDER BY h.due, h.id",
            [pupil if pupil is not None else -1, *ids],
        )
        return HomeworkList(
            homework=[
                HomeworkItem(id=i, class_id=c, subject=s, due=d, text=t, submitted_at=at) for i, c, s, d, t, at in rows
            ]
        )

    @api.get("/api/messages", summary="Inbox: messages to my class(es) for people of my role")
    def messages(ent_session: SessionCookie = None) -> Inbox:
        account = p.account(ent_session)
        ids = p.class_ids_of(account)
        rows = p.conn().execute(
            "SELECT id, class_id, sender, subject, body, sent_at FROM messages"
            f" WHERE audience = ? AND class_id IN ({in_list(ids)}) ORDER BY sent_at DESC, id",
            [account.role, *ids],
        )
        keys = ("id", "class_id", "sender", "subject", "body", "sent_at")
        return Inbox(messages=[Message(**dict(zip(keys, r, strict=True))) for r in rows])

    @api.get("/api/children", summary="Parents: my children and the one selected")
    def children(ent_session: SessionCookie = None) -> Children:
        session = p.session(ent_session)
        p.require_role(session.account, "parent", "only parents have children here")
        return Children(selected_child=session.selected_child, children=child_models(p.children_of(session.account)))

    @api.post("/api/children/{child}/select", summary="Parents: switch to another of my children")
    def select_child(child: Annotated[int, Path(ge=0, le=MAX_ID)], ent_session: SessionCookie = None) -> Children:
        session = p.session(ent_session)
        p.require_role(session.account, "parent", "only parents have children here")
        p.child(session.account, child)
        p.conn().execute("UPDATE sessions SET selected_child = ? WHERE token_hash = ?", (child, session.key))
        return Children(selected_child=child, children=child_models(p.children_of(session.account)))

    return api
