"""Writing to the ENT: a teacher's classes and posted homework, a pupil's submissions.

A submission is acknowledged (201) only once its commit is fsynced: it survives `kill -9` of the server.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from schoolsurge.platform import db
from schoolsurge.platform.core import Platform, in_list
from schoolsurge.platform.routes.common import SessionCookie
from schoolsurge.platform.schemas import (
    MAX_ID,
    ClassList,
    HomeworkItem,
    NewHomework,
    NewSubmission,
    Submission,
    SubmissionList,
    TeacherClass,
)

HomeworkId = Annotated[int, Path(ge=0, le=MAX_ID)]
ClassId = Annotated[int, Path(ge=0, le=MAX_ID)]


def router(p: Platform) -> APIRouter:
    api = APIRouter(tags=["homework"])

    def require_visible_homework(homework_id: int, class_ids: list[int]) -> None:
        """404 unless the homework exists and is for one of `class_ids`: others' and nobody's look the same."""
        row = p.conn().execute("SELECT class_id FROM homework WHERE id = ?", (homework_id,)).fetchone()
        if row is None or row[0] not in class_ids:
            raise HTTPException(404, "no such homework")

    @api.get("/api/classes", summary="Teachers: the classes I teach")
    def classes(ent_session: SessionCookie = None) -> ClassList:
        account = p.account(ent_session)
        p.require_role(account, "teacher", "only teachers have classes to teach")
        ids = p.class_ids_of(account)
        rows = p.conn().execute(
            "SELECT c.id, c.name, c.level, COUNT(a.id) FROM classes c LEFT JOIN accounts a ON a.class_id = c.id"
            f" WHERE c.id IN ({in_list(ids)}) GROUP BY c.id ORDER BY c.id",
            ids,
        )
        return ClassList(classes=[TeacherClass(id=i, name=n, level=lv, pupils=k) for i, n, lv, k in rows])

    @api.post("/api/classes/{class_id}/homework", status_code=201, summary="Teachers: post homework for a class")
    def post_homework(class_id: ClassId, body: NewHomework, ent_session: SessionCookie = None) -> HomeworkItem:
        account = p.account(ent_session)
        p.require_teacher_of(account, class_id)
        c = p.conn()
        with db.durable_transaction(c):
            homework_id = c.execute(
                "INSERT INTO homework (class_id, subject, due, text, author_id, posted_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (class_id, body.subject, body.due, body.text, account.id, time.time()),
            ).fetchone()[0]
        p.metrics.homework_posted.inc()
        return HomeworkItem(id=homework_id, class_id=class_id, subject=body.subject, due=body.due, text=body.text)

    @api.post(
        "/api/homework/{homework_id}/submissions",
        status_code=201,
        summary="Pupils: hand in homework of my class (a resubmission replaces the earlier one)",
    )
    def submit(homework_id: HomeworkId, body: NewSubmission, ent_session: SessionCookie = None) -> Submission:
        account = p.account(ent_session)
        p.require_role(account, "student", "only pupils hand in homework")
        require_visible_homework(homework_id, p.class_ids_of(account))
        c, now = p.conn(), time.time()
        with db.durable_transaction(c):
            submission_id = c.execute(
                "INSERT INTO submissions (homework_id, pupil_id, text, submitted_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (homework_id, pupil_id) DO UPDATE SET text = excluded.text,"
                " submitted_at = excluded.submitted_at RETURNING id",
                (homework_id, account.id, body.text, now),
            ).fetchone()[0]
        p.metrics.submissions.inc()
        return Submission(
            id=submission_id, homework_id=homework_id, pupil=account.idx, text=body.text, submitted_at=now
        )

    @api.get(
        "/api/homework/{homework_id}/submissions",
        summary="Submissions: a pupil's own, a parent's children's, all of the class for its teachers",
    )
    def submissions(homework_id: HomeworkId, ent_session: SessionCookie = None) -> SubmissionList:
        account = p.account(ent_session)
        require_visible_homework(homework_id, p.class_ids_of(account))
        sql = (
            "SELECT s.id, s.homework_id, a.idx, s.text, s.submitted_at FROM submissions s"
            " JOIN accounts a ON a.id = s.pupil_id WHERE s.homework_id = ?"
        )
        args: list[int] = [homework_id]
        if account.role == "student":
            sql, args = sql + " AND s.pupil_id = ?", [*args, account.id]
        elif account.role == "parent":
            sql += " AND s.pupil_id IN (SELECT child_id FROM parent_children WHERE parent_id = ?)"
            args.append(account.id)
        rows = p.conn().execute(sql + " ORDER BY a.idx", args)
        return SubmissionList(
            submissions=[
                Submission(id=i, homework_id=h, pupil=pupil, text=t, submitted_at=at) for i, h, pupil, t, at in rows
            ]
        )

    return api
