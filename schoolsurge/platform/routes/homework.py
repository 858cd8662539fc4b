"""Writing to the ENT: a teacher's classes and posted homework, a pupil's submissions.

A submission is acknowledged (201) only once its commit is fsynced: it survives `kill -9` of the server.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from schoolsurge.platform import db
from schoolsurge.platform.core import Platform, in_list
from schoolsurge.platform.routes.dependencies import CallerDep, PlatformDep
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

router = APIRouter(tags=["homework"])


def require_visible_homework(platform: Platform, homework_id: int, class_ids: list[int]) -> None:
    """404 unless the homework exists and is for one of `class_ids`: others' and nobody's look the same."""
    row = platform.connection().execute("SELECT class_id FROM homework WHERE id = ?", (homework_id,)).fetchone()
    if row is None or row[0] not in class_ids:
        raise HTTPException(404, "no such homework")


@router.get("/api/classes", summary="Teachers: the classes I teach")
def classes(platform: PlatformDep, caller: CallerDep) -> ClassList:
    account = caller.account()
    platform.require_role(account, "teacher", "only teachers have classes to teach")
    class_ids = platform.class_ids_of(account)
    rows = platform.connection().execute(
        "SELECT c.id, c.name, c.level, COUNT(a.id) FROM classes c LEFT JOIN accounts a ON a.class_id = c.id"
        f" WHERE c.id IN ({in_list(class_ids)}) GROUP BY c.id ORDER BY c.id",
        class_ids,
    )
    return ClassList(
        classes=[
            TeacherClass(id=class_id, name=name, level=level, pupils=pupils) for class_id, name, level, pupils in rows
        ]
    )


@router.post("/api/classes/{class_id}/homework", status_code=201, summary="Teachers: post homework for a class")
def post_homework(platform: PlatformDep, caller: CallerDep, class_id: ClassId, body: NewHomework) -> HomeworkItem:
    account = caller.account()
    platform.require_teacher_of(account, class_id)
    connection = platform.connection()
    with db.durable_transaction(connection):
        homework_id = connection.execute(
            "INSERT INTO homework (class_id, subject, due, text, author_id, posted_at)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (class_id, body.subject, body.due, body.text, account.id, time.time()),
        ).fetchone()[0]
    platform.metrics.homework_posted.inc()
    return HomeworkItem(id=homework_id, class_id=class_id, subject=body.subject, due=body.due, text=body.text)


@router.post(
    "/api/homework/{homework_id}/submissions",
    status_code=201,
    summary="Pupils: hand in homework of my class (a resubmission replaces the earlier one)",
)
def submit(platform: PlatformDep, caller: CallerDep, homework_id: HomeworkId, body: NewSubmission) -> Submission:
    account = caller.account()
    platform.require_role(account, "student", "only pupils hand in homework")
    require_visible_homework(platform, homework_id, platform.class_ids_of(account))
    connection, now = platform.connection(), time.time()
    with db.durable_transaction(connection):
        submission_id = connection.execute(
            "INSERT INTO submissions (homework_id, pupil_id, text, submitted_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (homework_id, pupil_id) DO UPDATE SET text = excluded.text,"
            " submitted_at = excluded.submitted_at RETURNING id",
            (homework_id, account.id, body.text, now),
        ).fetchone()[0]
    platform.metrics.submissions.inc()
    return Submission(id=submission_id, homework_id=homework_id, pupil=account.idx, text=body.text, submitted_at=now)


@router.get(
    "/api/homework/{homework_id}/submissions",
    summary="Submissions: a pupil's own, a parent's children's, all of the class for its teachers",
)
def submissions(platform: PlatformDep, caller: CallerDep, homework_id: HomeworkId) -> SubmissionList:
    account = caller.account()
    require_visible_homework(platform, homework_id, platform.class_ids_of(account))
    sql = (
        "SELECT s.id, s.homework_id, a.idx, s.text, s.submitted_at FROM submissions s"
        " JOIN accounts a ON a.id = s.pupil_id WHERE s.homework_id = ?"
    )
    arguments: list[int] = [homework_id]
    if account.role == "student":
        sql += " AND s.pupil_id = ?"
        arguments.append(account.id)
    elif account.role == "parent":
        sql += " AND s.pupil_id IN (SELECT child_id FROM parent_children WHERE parent_id = ?)"
        arguments.append(account.id)
    rows = platform.connection().execute(sql + " ORDER BY a.idx", arguments)
    return SubmissionList(
        submissions=[
            Submission(id=submission_id, homework_id=homework, pupil=pupil, text=text, submitted_at=at)
            for submission_id, homework, pupil, text, at in rows
        ]
    )
