"""A target that is never the bottleneck: the embedded platform's URLs answered with canned pages, for benchmarking
the load generator (benchmarks/bench_engine.py), not the platform.

    .venv/bin/python -m benchmarks.fast_target --port-file PATH [--processes 2] [--keep-alive-s 5]

It speaks just enough HTTP/1.1 for Locust's FastHttpSession (keep-alive, Content-Length bodies, no chunking) and
answers what the reference client (schoolsurge/clients/reference.py) asks: the CAS login form (a fresh
`execution` token and a flow cookie), the credentials POST (302 to the ENT's callback with a service ticket),
the callback (the ENT's session cookie), the JSON pages of a pupil, a teacher or a parent (the role read from the
username, as the embedded platform's accounts name it), homework and virtual-class writes, logout. A virtual class
is always open, so pupils who come for one are let in at once. Every person logs in; nothing is checked.

One request costs it a few tens of microseconds (a raw gevent server, no framework), so a generator on the same
cores is measured against a target that answers at once. Idle connections are closed after `--keep-alive-s`, as
uvicorn does (5 s by default), so a generator's connection reuse is what it would be against the platform.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
from pathlib import Path

import gevent
from gevent import Timeout, socket
from gevent.server import StreamServer

HEADER_END = b"\r\n\r\n"
MAX_HEADER_BYTES = 64 << 10
_tickets = itertools.count(1)

LOGIN_FORM = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Connexion ENT</title></head>
<body><h1>Connexion ENT</h1>
<form method="post" action="/cas/login">
<label>Identifiant <input type="text" name="username" autocomplete="username"></label>
<label>Mot de passe <input type="password" name="password" autocomplete="current-password"></label>
<input type="hidden" name="execution" value="{execution}">
<input type="hidden" name="_eventId" value="submit">
<input type="hidden" name="service" value="{service}">
<button type="submit">Se connecter</button>
</form>
</body></html>
"""
LOGOUT_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>D\u00e9connexion</title></head>
<body><h1>D\u00e9connexion</h1><p>You are logged out.</p></body></html>
"""

_HOMEWORK = {
    "homework": [
        {
            "id": n,
            "class_id": 0,
            "subject": "Langage",
            "due": f"2021-04-0{6 + n}",
            "text": "Lire le chapitre 11 et r\u00e9pondre aux questions de la page 14.",
            "submitted_at": None,
        }
        for n in (1, 2, 3)
    ]
}
_LESSON = {
    "day": "2021-04-06",
    "start": "08:30",
    "end": "10:00",
    "subject": "Activit\u00e9s artistiques",
    "class_id": 0,
}
_TIMETABLE = {"week_of": "2021-04-05", "lessons": [_LESSON] * 12}
_CHILDREN = [
    {"id": 25, "name": "Thomas Bruneau", "class_id": 1, "class_name": "MS-A", "level": "maternelle"},
    {"id": 52, "name": "Richard Bruneau", "class_id": 2, "class_name": "CP-A", "level": "elementaire"},
]
_OPEN_CLASS = {"id": 1, "class_id": 0, "title": "Cours du matin", "status": "open"}


def _dashboard(role: str) -> dict[str, object]:
    page: dict[str, object] = {"username": f"{role}.0000000", "role": role, "display_name": "\u00c9lise Mallet"}
    if role == "parent":
        classes = [{"id": 1, "name": "MS-A", "level": "maternelle"}, {"id": 2, "name": "CP-A", "level": "elementaire"}]
        page.update(children=_CHILDREN, selected_child=25, classes=classes, virtual_classes=[])
    else:
        page.update(children=[], selected_child=None, classes=[{"id": 0, "name": "PS-A", "level": "maternelle"}])
        page["virtual_classes"] = [_OPEN_CLASS] if role == "student" else []
    return page


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# GET pages by path and role (the role is the session cookie's value).
PAGES: dict[tuple[str, str], bytes] = {}
for _role in ("student", "teacher", "parent"):
    PAGES["/api/dashboard", _role] = _json(_dashboard(_role))
    PAGES["/api/homework", _role] = _json(_HOMEWORK)
    PAGES["/api/timetable", _role] = _json(_TIMETABLE)
    PAGES["/api/messages", _role] = _json({"messages": []})
    PAGES["/api/classes", _role] = _json({"classes": [{"id": 0, "name": "PS-A", "level": "maternelle", "pupils": 20}]})
    PAGES["/api/children", _role] = _json({"selected_child": 25, "children": _CHILDREN})
VIRTUAL_CLASS = _json({**_OPEN_CLASS, "join_url": "/classe/1"})
POSTS: dict[str, tuple[int, bytes]] = {
    "join": (200, _json({"status": "joined", "participants": 8, "waiting": 0})),
    "heartbeat": (200, _json({"status": "ok", "virtual_class": "open"})),
    "leave": (200, _json({"status": "left"})),
    "open": (200, VIRTUAL_CLASS),
    "select": (200, _json({"status": "ok"})),
    "submissions": (201, _json({"id": 1, "homework_id": 1, "pupil": 0, "text": "", "submitted_at": 0.0})),
    "homework": (201, _json({"id": 1, "class_id": 0, "subject": "", "due": "", "text": ""})),
    "virtual-classes": (201, VIRTUAL_CLASS),
}
STATUS_TEXT = {200: "OK", 201: "Created", 302: "Found", 404: "Not Found"}
ROLES = {"eleve": "student", "prof": "teacher", "parent": "parent"}


def response(status: int, body: bytes, content_type: str = "application/json", extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status} {STATUS_TEXT[status]}\r\nserver: fast-target\r\ncontent-length: {len(body)}\r\n"
        f"content-type: {content_type}\r\n{extra}\r\n"
    )
    return head.encode() + body


def answer(method: str, target: str, headers: dict[str, str], body: bytes, base_url: str) -> bytes:
    path, _, query = target.partition("?")
    role = _cookie(headers.get("cookie", ""), "ent_session").partition("-")[0] or "student"
    if path == "/cas/login" and method == "GET":
        execution = os.urandom(12).hex()
        page = LOGIN_FORM.format(execution=execution, service=f"{base_url}/ent/auth/callback").encode()
        flow = f"set-cookie: cas_login_flow={execution}; HttpOnly; Max-Age=300; Path=/cas; SameSite=lax\r\n"
        return response(200, page, "text/html; charset=utf-8", flow)
    if path == "/cas/login":  # the credentials: a ticket naming the role, for the callback
        username = body.split(b"username=", 1)[-1].split(b"&", 1)[0].decode()
        ticket_role = ROLES.get(username.split(".", 1)[0], "student")
        location = f"location: {base_url}/ent/auth/callback?ticket=ST-{ticket_role}-{next(_tickets)}\r\n"
        return response(302, b"", extra=location)
    if path == "/ent/auth/callback":
        ticket_role = query.partition("ST-")[2].partition("-")[0] or "student"
        cookie = f"set-cookie: ent_session={ticket_role}-{next(_tickets)}; HttpOnly; Path=/; SameSite=lax\r\n"
        return response(200, _json({"username": "x", "role": ticket_role, "display_name": "x"}), extra=cookie)
    if path == "/cas/logout":
        gone = 'set-cookie: ent_session=""; Max-Age=0; Path=/\r\n'
        return response(200, LOGOUT_PAGE.encode(), "text/html; charset=utf-8", gone)
    if method == "GET" and (path, role) in PAGES:
        return response(200, PAGES[path, role])
    if method == "POST":
        status, page = POSTS.get(path.rstrip("/").rsplit("/", 1)[-1], (404, b'{"detail":"not here"}'))
        return response(status, page)
    return response(404, b'{"detail":"not here"}')


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def serve_connection(sock: socket.socket, base_url: str, keep_alive_s: float) -> None:
    buffer = b""
    try:
        while True:
            while HEADER_END not in buffer:
                if len(buffer) > MAX_HEADER_BYTES:
                    return
                chunk = None
                with Timeout(keep_alive_s, False):
                    chunk = sock.recv(65536)
                if not chunk:
                    return  # closed by the client, or idle past the keep-alive timeout (as uvicorn closes it)
                buffer += chunk
            head, _, buffer = buffer.partition(HEADER_END)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            while len(buffer) < length:
                more = sock.recv(65536)
                if not more:
                    return
                buffer += more
            body, buffer = buffer[:length], buffer[length:]
            sock.sendall(answer(method, target, headers, body, base_url))
    except OSError:
        return
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", type=Path, required=True, help="where to write the port, once serving")
    parser.add_argument("--processes", type=int, default=1, help="serving processes sharing the port")
    parser.add_argument("--keep-alive-s", type=float, default=5.0, help="idle connections closed after this")
    args = parser.parse_args(argv)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    children = []
    for _ in range(args.processes - 1):
        pid = gevent.fork()
        if pid == 0:
            children = []
            break
        children.append(pid)

    def stop(*_: object) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    server = StreamServer(listener, lambda sock, _: serve_connection(sock, base_url, args.keep_alive_s))
    server.init_socket()
    if children or args.processes == 1:  # the first process says where it serves
        temporary = args.port_file.with_suffix(".tmp")
        temporary.write_text(str(port))
        temporary.rename(args.port_file)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
