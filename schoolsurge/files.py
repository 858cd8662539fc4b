"""How the suite writes and reads the files of run directories and reports/: never through a link, never blocked
by something that is not a file, never half-written.

A run directory may come from someone else (a colleague's archive, a shared folder), so nothing found in it is
trusted: a symbolic link may point at ~/.ssh/authorized_keys, a FIFO blocks whoever opens it, a device reads
without end.

- `atomic_file(path)` writes a fresh temporary file beside `path`, created exclusively (O_EXCL: never a file or a
  link already there, never another writer's), and renames it over `path` once complete: a reader never sees half
  a file, two writers never share a temporary file (the last rename wins), and a link at `path` is replaced by
  the file, never written through. `atomic_binary_file` is the same for bytes (a PNG).
- `open_for_append(path)` (a file written line by line) opens only a regular file, never through a link;
  `remove_entry(path)` clears a name before a library that opens its files by name (Locust's CSV writer) does.
- `open_regular(path)` reads only a regular file: anything else there (a FIFO, a device, a directory, a link)
  raises NotRegularFileError, an OSError, without blocking; `readable(path, notes)` says beforehand whether a
  file is there to read and notes one that is skipped.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO, cast

NEW_FILE_MODE = 0o666  # as open("w") creates a file: the umask decides
_TEMP_ATTEMPTS = 100


class NotRegularFileError(OSError):
    """Something other than a regular file where the suite reads or writes one; it is left alone."""

    def __init__(self, path: Path | str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"{kind}, not a regular file", str(path))
        self.kind = kind

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


# ---- writing -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[TextIO]:
    """A UTF-8 text file written beside `path` and renamed over it once complete (see the module's docstring);
    on error the previous version stays and the temporary file is removed."""
    with _atomic(path, binary=False) as handle:
        yield cast(TextIO, handle)


@contextlib.contextmanager
def atomic_binary_file(path: Path) -> Iterator[BinaryIO]:
    """atomic_file for bytes."""
    with _atomic(path, binary=True) as handle:
        yield cast(BinaryIO, handle)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    with atomic_binary_file(path) as handle:
        handle.write(data)


@contextlib.contextmanager
def _atomic(path: Path, binary: bool) -> Iterator[IO[Any]]:
    path = Path(path)
    fd, temporary = _exclusive_temporary(path)
    try:
        with open(fd, "wb") if binary else open(fd, "w", newline="", encoding="utf-8") as handle:
            yield handle
        os.replace(temporary, path)  # rename(2) replaces a link at `path`, never follows it
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _exclusive_temporary(path: Path) -> tuple[int, Path]:
    """A new file `.<name>.<random>.tmp` beside path, created by this call alone (O_EXCL fails on anything
    already there, a link included)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(_TEMP_ATTEMPTS):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, NEW_FILE_MODE), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def open_for_append(path: Path) -> TextIO:
    """`path` opened to add UTF-8 lines at its end, created when missing; NotRegularFileError when something
    else than a regular file is there (a link is not followed, a FIFO does not block)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = _open_regular_fd(Path(path), flags)
    return open(fd, "a", encoding="utf-8")


def remove_entry(path: Path) -> None:
    """Remove the file or link at `path` (a link itself, never what it points at); nothing there is fine. Done
    before a library that opens its own files by name (Locust's CSV writer) creates one there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# ---- reading -----------------------------------------------------------------------------------------------


def open_regular(path: Path, *, follow_links: bool = False) -> BinaryIO:
    """`path` opened for reading when it is a regular file; NotRegularFileError otherwise, at once (a FIFO does
    not block, a device is not read). A link is refused unless `follow_links` (a file the user named)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
    fd = _open_regular_fd(Path(path), flags)
    return open(fd, "rb")


def open_regular_text(path: Path, errors: str = "strict") -> TextIO:
    """open_regular, decoded as UTF-8."""
    return io.TextIOWrapper(open_regular(path), encoding="utf-8", errors=errors)


def read_regular_text(path: Path, errors: str = "strict") -> str:
    with open_regular(path) as handle:
        return handle.read().decode("utf-8", errors=errors)


def readable(path: Path, notes: list[str] | None = None) -> bool:
    """True when a regular file is at `path`; False when nothing is, or something else (a FIFO, a device, a
    directory, a link), which `notes` then records, once, as skipped."""
    kind = irregular_kind(path)
    if kind is None:
        return path.exists()
    if notes is not None:
        note = skipped_note(path, kind)
        if note not in notes:
            notes.append(note)
    return False


def skipped_note(path: Path, kind: str) -> str:
    return f"{Path(path).name} skipped: {kind}, not a regular file"


def irregular_kind(path: Path) -> str | None:
    """What is at `path` when it is there but is not a regular file ("a FIFO", "a symbolic link"...); None for a
    regular file or nothing."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _open_regular_fd(path: Path, flags: int) -> int:
    """A descriptor on the regular file at path (flags carry O_NONBLOCK so that opening a FIFO returns at once;
    it is cleared again), or NotRegularFileError."""
    try:
        fd = os.open(path, flags, NEW_FILE_MODE)
    except OSError as error:
        kind = irregular_kind(path)  # a link refused by O_NOFOLLOW (ELOOP), a FIFO without reader (ENXIO)...
        if kind is not None and error.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.ENOTDIR):
            raise NotRegularFileError(path, kind) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, _kind(mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
