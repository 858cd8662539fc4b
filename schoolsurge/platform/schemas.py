"""Request and response bodies of the platform's JSON API (they make its OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Ids travel as SQLite integers: bounded so that no request can overflow them.
MAX_ID = 2**31 - 1


def _json_integer(value: object) -> object:
    """A JSON integer: 3 or 3.0 (JSON Schema's view), never true, "3" or 3.5."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


Id = Annotated[int, Field(ge=0, le=MAX_ID), BeforeValidator(_json_integer)]


# Lone surrogates (valid in JSON, not in UTF-8) are refused by pydantic's str validation itself.
Subject = Annotated[str, Field(min_length=1, max_length=100)]
Title = Annotated[str, Field(min_length=1, max_length=200)]
Instructions = Annotated[str, Field(min_length=1, max_length=2000)]
Essay = Annotated[str, Field(min_length=1, max_length=5000)]


class Body(BaseModel):
    # Strict: a request body means what its JSON says (no true for 1.0, no "3" for 3).
    model_config = ConfigDict(extra="forbid", strict=True)


class Error(BaseModel):
    detail: str


class OAuthError(BaseModel):
    """An OAuth 2.0 error response (RFC 6749 section 5.2), as the OpenID Provider answers its clients."""

    error: str
    error_description: str | None = None
    state: str | None = None


class Status(BaseModel):
    status: str


class Me(BaseModel):
    username: str
    role: Literal["student", "teacher", "parent"]
    display_name: str


class Child(BaseModel):
    id: int = Field(description="the pupil's roster index")
    name: str
    class_id: int
    class_name: str
    level: str


class ClassInfo(BaseModel):
    id: int
    name: str
    level: str


class VirtualClassSummary(BaseModel):
    id: int
    class_id: int
    title: str
    status: Literal["scheduled", "open"]


class Dashboard(BaseModel):
    username: str
    role: Literal["student", "teacher", "parent"]
    display_name: str
    children: list[Child]
    selected_child: int | None = Field(description="parents: the child whose pages are shown by default")
    classes: list[ClassInfo]
    virtual_classes: list[VirtualClassSummary] = Field(description="scheduled (waiting room) or open, not closed")


class Lesson(BaseModel):
    day: str
    start: str
    end: str
    subject: str
    class_id: int


class Timetable(BaseModel):
    week_of: str
    lessons: list[Lesson]


class HomeworkItem(BaseModel):
    id: int
    class_id: int
    subject: str
    due: str
    text: str
    submitted_at: float | None = Field(default=None, description="pupils: when they handed it in")


class HomeworkList(BaseModel):
    homework: list[HomeworkItem]


class NewSubmission(Body):
    text: Essay


class Submission(BaseModel):
    id: int
    homework_id: int
    pupil: int = Field(description="the pupil's roster index")
    text: str
    submitted_at: float


class SubmissionList(BaseModel):
    submissions: list[Submission]


class Message(BaseModel):
    id: int
    class_id: int
    sender: str
    subject: str
    body: str
    sent_at: str


class Inbox(BaseModel):
    messages: list[Message]


class Children(BaseModel):
    selected_child: int | None
    children: list[Child]


class TeacherClass(BaseModel):
    id: int
    name: str
    level: str
    pupils: int


class ClassList(BaseModel):
    classes: list[TeacherClass]


class NewHomework(Body):
    subject: Subject
    due: Annotated[str, Field(pattern=r"^20\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$", description="YYYY-MM-DD")]
    text: Instructions


class NewVirtualClass(Body):
    class_id: Id
    title: Title


class VirtualClass(BaseModel):
    id: int
    class_id: int
    title: str
    status: Literal["scheduled", "open", "closed"]
    join_url: str


class JoinStatus(BaseModel):
    status: Literal["waiting", "joined"] = Field(description="waiting: in the waiting room until the teacher opens")
    participants: int = Field(description="people in the class, teacher's pupils only")
    waiting: int = Field(description="people in the waiting room")


class Heartbeat(BaseModel):
    status: Literal["ok"]
    virtual_class: Literal["scheduled", "open"]


class Participant(BaseModel):
    id: int = Field(description="the pupil's roster index")
    name: str
    state: Literal["waiting", "in_class", "left"]


class Participants(BaseModel):
    virtual_class_id: int
    status: Literal["scheduled", "open", "closed"]
    participants: list[Participant]


class CapacityChange(Body):
    fraction_lost: float = Field(ge=0.0, le=1.0, description="share of every worker's slots and queue taken out")


class Capacity(BaseModel):
    fraction_lost: float
    workers: int
    max_in_flight_per_worker: int
    in_flight_limit_per_worker: int = Field(description="slots left after the incident")
    queue_length_per_worker: int
    queue_limit_per_worker: int = Field(description="queue places left after the incident")
