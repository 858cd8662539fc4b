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


class PlatformClient(ABC):
    """One person's conversation with the platform. Each method is one step a person takes; it raises
    PlatformError when the platform fails that step."""

    @abstractmethod
    def login(self, username: str, password: str) -> None: ...

    @abstractmethod
    def logout(self) -> None: ...

    @abstractmethod
    def dashboard(self) -> Dashboard: ...

    @abstractmethod
    def timetable(self, child_id: int | None = None) -> None: ...

    @abstractmethod
    def homework(self, child_id: int | None = None) -> None: ...

    @abstractmethod
    def create_virtual_class(self, class_id: int, title: str) -> int:
        """Open a virtual class; returns its id."""

    @abstractmethod
    def join_virtual_class(self, virtual_class_id: int) -> None: ...

    @abstractmethod
    def heartbeat(self, virtual_class_id: int) -> None: ...

    @abstractmethod
    def leave_virtual_class(self, virtual_class_id: int) -> None: ...
