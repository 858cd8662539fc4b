"""The steps a school platform offers, independent of its HTTP protocol."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


class PlatformError(Exception):
    """A step failed (already recorded as a failed request in Locust's statistics)."""


@dataclass(frozen=True)
class Dashboard:
    role: str
    class_ids: list[int] = field(default_factory=list)
    child_ids: list[int] = field(default_factory=list)
    open_virtual_classes: dict[int, int] = field(default_factory=dict)
    """Open virtual class id per class id."""
    waiting_virtual_classes: dict[int, int] = field(default_factory=dict)
    """Virtual class id per class id, for classes created but not opened yet (joining puts you in the waiting room)."""
    selected_child: int | None = None
    """Parents: the child whose timetable and homework are shown when no child is named."""


@dataclass(frozen=True)
class Homework:
    id: int
    class_id: int
    subject: str
    due: str
    submitted: bool = False


class PlatformClient(ABC):
    """One person's conversation with the platform. Each method is one step a person takes; it raises
    PlatformError when the platform fails that step.

    The abstract steps are the ones every persona needs; the others are optional journeys a platform may not
    offer (they raise NotImplementedError unless a subclass provides them)."""

    @abstractmethod
    def login(self, username: str, password: str) -> None: ...

    @abstractmethod
    def logout(self) -> None: ...

    @abstractmethod
    def dashboard(self) -> Dashboard: ...

    @abstractmethod
    def timetable(self, child_id: int | None = None) -> None: ...

    @abstractmethod
    def homework(self, child_id: int | None = None) -> list[Homework]:
        """The homework list (of a parent's child when child_id is given)."""

    @abstractmethod
    def create_virtual_class(self, class_id: int, title: str) -> int:
        """Create a virtual class and open it at once; returns its id."""

    @abstractmethod
    def join_virtual_class(self, virtual_class_id: int) -> str:
        """Join; returns "joined", or "waiting" while the teacher has not opened it."""

    @abstractmethod
    def heartbeat(self, virtual_class_id: int) -> str:
        """Still here; returns the virtual class's status ("scheduled" while waiting, "open", "closed" once the
        teacher has ended it)."""

    @abstractmethod
    def leave_virtual_class(self, virtual_class_id: int) -> None: ...

    # ---- optional journeys --------------------------------------------------------------------------

    def schedule_virtual_class(self, class_id: int, title: str) -> int:
        """Create a virtual class whose waiting room pupils can enter; open it later. Returns its id."""
        raise NotImplementedError

    def open_virtual_class(self, virtual_class_id: int) -> None:
        """Teachers: open a scheduled virtual class; pupils waiting are let in."""
        raise NotImplementedError

    def participants(self, virtual_class_id: int) -> int:
        """Teachers: how many pupils are in the class or its waiting room."""
        raise NotImplementedError

    def submit_homework(self, homework_id: int, text: str) -> int:
        """Pupils: hand in homework (a durable write); returns the submission id."""
        raise NotImplementedError

    def classes(self) -> list[int]:
        """Teachers: ids of the classes they teach."""
        raise NotImplementedError

    def post_homework(self, class_id: int, subject: str, due: str, text: str) -> int:
        """Teachers: post homework for a class (due: YYYY-MM-DD); returns its id."""
        raise NotImplementedError

    def messages(self) -> int:
        """Read the inbox; returns the number of messages."""
        raise NotImplementedError

    def children(self) -> list[int]:
        """Parents: roster indices of their children."""
        raise NotImplementedError

    def switch_child(self, child_id: int) -> None:
        """Parents: make another of their children the one shown by default."""
        raise NotImplementedError
