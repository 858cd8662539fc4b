"""A real, independent SSO server for the tests: LemonLDAP::NG from Debian's packages, with its CAS issuer and
its OpenID Connect provider on, in front of a stand-in ENT (the service the SSO protects).

Nothing of the system's LemonLDAP::NG or nginx set-up is used or touched: the portal (`llng-fastcgi-server`, a
Perl FastCGI server) and nginx in front of it run as this process's children, from files written into a
temporary directory (lemonldap-ng.ini, the configuration lmConf-1.json, nginx.conf, the sessions, the users),
on loopback ports chosen at run time, and both are stopped and the directory removed at the end.

- Users: LemonLDAP's DBI backend on a SQLite table (`users`: uid, password, cn, mail) written here, so every
  person of a surge has an account of their own with its own password; `write_accounts_csv` writes the same
  accounts as the `--accounts` file of `schoolsurge run` (role,username,password).
- CAS: `PORTAL/cas/` (login, logout, serviceValidate, p3/serviceValidate), one CAS application registered for
  the stand-in's service URL and every other service refused (`casAccessControlPolicy: error`).
- OpenID Connect: issuer `PORTAL` (no trailing slash), discovery at `/.well-known/openid-configuration`,
  endpoints under `/oauth2/`; one confidential relying party (client secret, PKCE required, consent skipped,
  RS256 ID tokens) whose redirect URI is the stand-in's.
- The stand-in ENT (`StandInEnt`, a threaded Python HTTP server in this process): `/callback` validates a CAS
  ticket at `/cas/p3/serviceValidate` and opens a session; `/oidc/login` starts an authorization code flow
  with PKCE and `/oidc/callback` redeems the code at the token endpoint, checks the ID token and opens a
  session; `/` is its home page, for a session cookie or a bearer access token (checked at the userinfo
  endpoint). Behind the session cookie, the pages of the shipped journey map of a typical CAS-fronted ENT
  (schoolsurge/clients/maps/cas-ent.yaml): `/` lists the person's class, a pupil's open virtual class and a
  parent's child as the map reads them; `/cahier-de-textes`, `/emploi-du-temps`, `/messagerie`; the virtual
  class's JSON calls (`POST /classe-virtuelle/ID/rejoindre`, `/presence`, `/quitter`); `/logout`, which ends
  the session and sends the browser on to the portal's logout. `pages` counts what each path served.

The session-scoped fixture `lemonldap_sso` holds it all for a test session; it skips, saying in one line which
Debian packages are missing (`unavailable_reason`), where they are not installed.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import csv
import hashlib
import hmac
import http.client
import http.server
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree import ElementTree

import pytest

from schoolsurge.runner import free_loopback_port

# Debian's packages, one home for .ci/run and the skip reason: the portal, nginx, the SQLite driver and what the
# portal needs at start that Debian only recommends.
PACKAGES_FILE = Path(__file__).resolve().parent.parent / ".ci" / "lemonldap-packages"
FASTCGI_SERVER = "/usr/sbin/llng-fastcgi-server"
PORTAL_HTDOCS = Path("/usr/share/lemonldap-ng/portal/htdocs")
PORTAL_TEMPLATES = Path("/usr/share/lemonldap-ng/portal/templates")
LLNG_VERSION = "2.16.1"  # the version of Debian 12's package, whose configuration format this is
STARTUP_TIMEOUT_S = 90.0
LOG_LEVEL = "warn"  # "debug" to see why the portal refuses something
STOP_TIMEOUT_S = 15.0
# The portal's FastCGI processes: each Perl process serves one request at a time, so a few of them keep a small
# surge from queueing behind a single login on a two-core machine.
FASTCGI_PROCESSES = 4
# LemonLDAP's login form names its credential fields `user` and `password` (CasClient's default username field
# is `username`: without `--cas-username-field user` nobody logs in).
USERNAME_FIELD = "user"
PASSWORD_FIELD = "password"
CAS_APPLICATION = "ent"
OIDC_CLIENT_ID = "ent"
OIDC_SIGNING_KEY_ID = "schoolsurge-test"
# Who runs the portal and nginx's workers when the tests run as root: llng-fastcgi-server refuses root.
UNPRIVILEGED_USER, UNPRIVILEGED_GROUP = "nobody", "nogroup"
# More accounts per role than a small smoke surge has people of that role (about 30 pupils, 5 teachers and 11
# parents at scale 1e-5), so nobody shares an account.
ACCOUNTS_PER_ROLE = {"student": 40, "teacher": 8, "parent": 16}


def packages() -> list[str]:
    """The Debian packages LemonLDAP::NG's set-up needs (.ci/lemonldap-packages)."""
    lines = PACKAGES_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def unavailable_reason() -> str | None:
    """Why LemonLDAP::NG cannot run on this machine (one line), or None when it can."""
    if shutil.which("dpkg-query") is None:
        return "LemonLDAP::NG's set-up needs Debian's packages, and this machine has no dpkg-query"
    wanted = packages()
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Status}\n", *wanted], capture_output=True, text=True, check=False
    )
    installed = {line.split()[0] for line in listed.stdout.splitlines() if line.endswith(" installed")}
    missing = [name for name in wanted if name not in installed]
    if missing:
        return f"LemonLDAP::NG cannot run here: {' '.join(missing)} not installed (.ci/run installs them)"
    return None


@dataclass(frozen=True)
class Account:
    role: str  # student, teacher or parent: the roles of an --accounts file
    username: str
    password: str
    name: str


def make_accounts(student: int, teacher: int, parent: int) -> list[Account]:
    """Distinct accounts with random passwords, as an ENT's test accounts would be."""
    accounts = []
    for role, prefix, count in (
        ("student", "eleve", student),
        ("teacher", "prof", teacher),
        ("parent", "parent", parent),
    ):
        for index in range(1, count + 1):
            login = f"{prefix}.{index:04d}"
            accounts.append(Account(role, login, secrets.token_urlsafe(12), f"{prefix.title()} {index}"))
    return accounts


def basic_safe_secret(client_id: str) -> str:
    """A random client secret that LemonLDAP 2.16 accepts by HTTP Basic as well as in the form: it reads the
    Basic credentials with `^Basic (\\w+)`, so a base64 of `id:secret` holding `+` or `/` is cut short there
    and refused (401 invalid_client); the secret is drawn again until its encoding has neither."""
    while True:
        secret = secrets.token_urlsafe(24)
        credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        if "+" not in credentials and "/" not in credentials:
            return secret


def write_accounts_csv(accounts: list[Account], path: Path) -> Path:
    """The accounts as `schoolsurge run --accounts` reads them: role,username,password."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["role", "username", "password"])
        writer.writerows((account.role, account.username, account.password) for account in accounts)
    return path


# ---- LemonLDAP::NG ------------------------------------------------------------------------------------------


@dataclass
class LemonLdap:
    """LemonLDAP::NG's portal on a loopback port, its CAS issuer and OIDC provider serving one ENT.

    Use it as a context manager: entering writes the files and starts the FastCGI server and nginx, waiting
    until the portal answers; leaving stops both and removes the directory."""

    accounts: list[Account]
    service_url: str  # the CAS service (the stand-in's /callback)
    redirect_uri: str  # the OIDC relying party's redirect URI (the stand-in's /oidc/callback)
    port: int = field(default_factory=free_loopback_port)
    client_secret: str = field(default_factory=lambda: basic_safe_secret(OIDC_CLIENT_ID))
    directory: Path = field(init=False)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False)

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cas_url(self) -> str:
        return f"{self.portal_url}/cas"

    @property
    def issuer(self) -> str:
        return self.portal_url

    def __enter__(self) -> LemonLdap:
        self.directory = Path(tempfile.mkdtemp(prefix="schoolsurge-lemonldap-"))
        try:
            self._write_files()
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in reversed(self._processes):
            _stop_group(process)
        self._processes.clear()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the portal's and nginx's logs, for a failure's message."""
        text = []
        for name in ("fastcgi.log", "nginx-error.log"):
            path = self.directory / name
            if path.exists():
                text.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(text)

    # ---- files ------------------------------------------------------------------------------------------

    def _write_files(self) -> None:
        root = self.directory
        for name in ("conf", "sessions/lock", "psessions/lock", "cache", "nginx-temp"):
            (root / name).mkdir(parents=True)
        self._write_users(root / "users.sqlite3")
        (root / "lemonldap-ng.ini").write_text(self._ini(), encoding="utf-8")
        (root / "conf" / "lmConf-1.json").write_text(json.dumps(self._configuration(), indent=1), encoding="utf-8")
        (root / "nginx.conf").write_text(self._nginx_conf(), encoding="utf-8")
        if os.geteuid() == 0:
            # The portal runs unprivileged: it must read everything here and write its sessions and caches.
            user = pwd.getpwnam(UNPRIVILEGED_USER)
            root.chmod(0o755)
            for path in [root, *root.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)

    def _write_users(self, path: Path) -> None:
        with contextlib.closing(sqlite3.connect(path)) as database, database:
            database.execute("CREATE TABLE users (uid TEXT PRIMARY KEY, password TEXT, cn TEXT, mail TEXT)")
            database.executemany(
                "INSERT INTO users VALUES (?, ?, ?, ?)",
                [(a.username, a.password, a.name, f"{a.username}@ent.example") for a in self.accounts],
            )

    def _ini(self) -> str:
        """lemonldap-ng.ini: where the configuration is; logs to stderr (llng-fastcgi-server would use syslog)."""
        root = self.directory
        cache = f"{{'namespace' => 'lemonldap-ng-config', 'cache_root' => '{root}/cache', 'cache_depth' => 3}}"
        return f"""\
[all]
logLevel = {LOG_LEVEL}
logger = Lemonldap::NG::Common::Logger::Std
userLogger = Lemonldap::NG::Common::Logger::Std

[configuration]
type = File
dirName = {root}/conf
localStorage = Cache::FileCache
localStorageOptions = {cache}

[portal]
staticPrefix = /static
templateDir = {PORTAL_TEMPLATES}
languages = en, fr

[handler]
status = 0
"""

    def _configuration(self) -> dict[str, Any]:
        """lmConf-1.json: what the manager would write, reduced to what this set-up needs."""
        root = self.directory
        private_key, public_key = _rsa_key_pair()
        storage = {
            "Directory": f"{root}/sessions",
            "LockDirectory": f"{root}/sessions/lock",
            "generateModule": "Lemonldap::NG::Common::Apache::Session::Generate::SHA256",
        }
        return {
            "cfgNum": 1,
            "cfgAuthor": "schoolsurge tests",
            "cfgDate": str(int(time.time())),
            "cfgVersion": LLNG_VERSION,
            "portal": f"{self.portal_url}/",
            "domain": "127.0.0.1",
            "cookieName": "lemonldap",
            "securedCookie": 0,
            "timeout": 72000,
            "portalSkin": "bootstrap",
            "notification": 0,
            "locationRules": {"127.0.0.1": {"default": "accept"}},
            "globalStorage": "Apache::Session::File",
            "globalStorageOptions": storage,
            "persistentStorage": "Apache::Session::File",
            "persistentStorageOptions": {"Directory": f"{root}/psessions", "LockDirectory": f"{root}/psessions/lock"},
            "localSessionStorage": "Cache::FileCache",
            "localSessionStorageOptions": {
                "namespace": "lemonldap-ng-sessions",
                "default_expires_in": 600,
                "directory_umask": "007",
                "cache_root": f"{root}/cache",
                "cache_depth": 3,
            },
            # Users: a SQL table, passwords compared as stored (no SQL hashing function in SQLite).
            "authentication": "DBI",
            "userDB": "Same",
            "passwordDB": "Null",
            "registerDB": "Null",
            "dbiAuthChain": f"dbi:SQLite:dbname={root}/users.sqlite3",
            "dbiAuthUser": "",
            "dbiAuthPassword": "",
            "dbiAuthTable": "users",
            "dbiUserTable": "users",
            "dbiAuthLoginCol": "uid",
            "dbiAuthPasswordCol": "password",
            "dbiAuthPasswordHash": "",
            "dbiExportedVars": {"uid": "uid", "cn": "cn", "mail": "mail"},
            "exportedVars": {},
            "whatToTrace": "uid",
            # CAS issuer: only the ENT's service gets tickets.
            "issuerDBCASActivation": 1,
            "casAccessControlPolicy": "error",
            "casStrictMatching": 1,
            "casAppMetaDataOptions": {CAS_APPLICATION: {"casAppMetaDataOptionsService": self.service_url}},
            "casAppMetaDataExportedVars": {CAS_APPLICATION: {"cn": "cn", "mail": "mail"}},
            # OpenID Connect provider: the ENT as a confidential relying party, with PKCE.
            "issuerDBOpenIDConnectActivation": 1,
            "oidcServiceMetaDataIssuer": self.issuer,
            "oidcServicePrivateKeySig": private_key,
            "oidcServicePublicKeySig": public_key,
            "oidcServiceKeyIdSig": OIDC_SIGNING_KEY_ID,
            "oidcRPMetaDataOptions": {
                OIDC_CLIENT_ID: {
                    "oidcRPMetaDataOptionsClientID": OIDC_CLIENT_ID,
                    "oidcRPMetaDataOptionsClientSecret": self.client_secret,
                    "oidcRPMetaDataOptionsPublic": 0,
                    "oidcRPMetaDataOptionsRedirectUris": self.redirect_uri,
                    "oidcRPMetaDataOptionsRequirePKCE": 1,
                    "oidcRPMetaDataOptionsBypassConsent": 1,
                    "oidcRPMetaDataOptionsIDTokenSignAlg": "RS256",
                }
            },
            "oidcRPMetaDataExportedVars": {
                OIDC_CLIENT_ID: {"name": "cn", "email": "mail", "preferred_username": "uid"}
            },
        }

    def _nginx_conf(self) -> str:
        root = self.directory
        user = f"user {UNPRIVILEGED_USER} {UNPRIVILEGED_GROUP};" if os.geteuid() == 0 else ""
        temp = root / "nginx-temp"
        # Debian's /etc/lemonldap-ng/portal-nginx.conf, on our port and socket, its temporary files here.
        return f"""\
{user}
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
  include /etc/nginx/mime.types;
  access_log off;
  client_body_temp_path {temp}/body;
  fastcgi_temp_path {temp}/fastcgi;
  proxy_temp_path {temp}/proxy;
  scgi_temp_path {temp}/scgi;
  uwsgi_temp_path {temp}/uwsgi;
  upstream llng_portal_upstream {{ server unix:{root}/llng-fastcgi.sock; }}
  server {{
    listen 127.0.0.1:{self.port};
    server_name 127.0.0.1;
    root {PORTAL_HTDOCS}/;
    if ($uri !~ ^/((static|javascript|favicon).*|.*\\.psgi)) {{
      rewrite ^/(.*)$ /index.psgi/$1 break;
    }}
    location ~ ^(?<sc>/.*\\.psgi)(?:$|/) {{
      include /etc/nginx/fastcgi_params;
      fastcgi_pass llng_portal_upstream;
      fastcgi_param LLTYPE psgi;
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_split_path_info ^(.*\\.psgi)(/.*)$;
      fastcgi_param PATH_INFO $fastcgi_path_info;
    }}
    location /static/ {{ alias {PORTAL_HTDOCS}/static/; }}
    location /javascript/ {{ alias /usr/share/javascript/; }}
  }}
}}
"""

    # ---- processes --------------------------------------------------------------------------------------

    def _start(self) -> None:
        root = self.directory
        environment = {**os.environ, "LLNG_DEFAULTCONFFILE": str(root / "lemonldap-ng.ini")}
        environment["LLNG_DEFAULTLOGGER"] = "Lemonldap::NG::Common::Logger::Std"  # not syslog
        fastcgi = [FASTCGI_SERVER, "--foreground", "-n", str(FASTCGI_PROCESSES)]
        fastcgi += ["-s", str(root / "llng-fastcgi.sock"), "-p", str(root / "llng-fastcgi.pid")]
        if os.geteuid() == 0:
            fastcgi += ["-u", UNPRIVILEGED_USER, "-g", UNPRIVILEGED_GROUP]
        self._spawn(fastcgi, root / "fastcgi.log", environment)
        nginx = ["nginx", "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "nginx-error.log")]
        self._spawn([*nginx, "-g", "daemon off;"], root / "nginx.log", environment)
        self._wait_until_ready()

    def _spawn(self, command: list[str], log: Path, environment: dict[str, str]) -> None:
        with log.open("wb") as output:
            self._processes.append(
                subprocess.Popen(
                    command, stdout=output, stderr=subprocess.STDOUT, env=environment, start_new_session=True
                )
            )

    def _wait_until_ready(self) -> None:
        """Until the OIDC discovery document comes back: nginx, the FastCGI server and the portal all answer."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args[0]} exited ({process.returncode})\n{self.log_tail()}")
            try:
                status, _, body = http_request("GET", f"{self.portal_url}/.well-known/openid-configuration")
                if status == 200 and json.loads(body).get("issuer") == self.issuer:
                    return
                last = f"HTTP {status}"
            except (OSError, ValueError) as error:
                last = str(error)
            time.sleep(0.2)
        raise RuntimeError(f"LemonLDAP::NG not ready after {STARTUP_TIMEOUT_S:.0f} s ({last})\n{self.log_tail()}")


def _rsa_key_pair() -> tuple[str, str]:
    """An RSA signing key for the ID tokens (PEM private key, PEM public key), made as LemonLDAP's own
    rotateOidcKeys makes it (Crypt::OpenSSL::RSA, one of its dependencies)."""
    script = (
        "use Crypt::OpenSSL::RSA; my $key = Crypt::OpenSSL::RSA->generate_key(2048);"
        "print $key->get_private_key_string(), $key->get_public_key_x509_string();"
    )
    pem = subprocess.run(["perl", "-e", script], capture_output=True, text=True, check=True).stdout
    private, separator, public = pem.partition("-----BEGIN PUBLIC KEY-----")
    return private, separator + public


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group this fixture started (the FastCGI manager and its workers, or nginx's
    master and worker), SIGKILL if it is still there after STOP_TIMEOUT_S."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# ---- HTTP ---------------------------------------------------------------------------------------------------


def http_request(
    method: str, url: str, *, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request, no redirect followed: (status, headers, body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    sent = dict(headers or {})
    body = None
    if form is not None:
        body = urlencode(form).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}", body, sent)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


# ---- the stand-in ENT ---------------------------------------------------------------------------------------


@dataclass
class StandInEnt:
    """The service LemonLDAP::NG protects: a threaded HTTP server on a loopback port, in this process.

    Its `sso` (the LemonLDAP it trusts) is set once LemonLDAP is up, since each needs the other's URL."""

    port: int = 0
    sso: LemonLdap | None = None
    sessions: dict[str, str] = field(default_factory=dict)  # session cookie -> user
    pending: dict[str, tuple[str, str]] = field(default_factory=dict)  # OIDC state -> (PKCE verifier, nonce)
    logins: dict[str, int] = field(default_factory=lambda: {"cas": 0, "oidc": 0})
    pages: collections.Counter[str] = field(default_factory=collections.Counter)  # path -> pages served
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        return f"{self.base_url}/callback"

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/oidc/callback"

    def __enter__(self) -> StandInEnt:
        ent = self

        class Handler(_EntHandler):
            stand_in = ent

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="stand-in-ent", daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def count(self, path: str) -> None:
        with self._lock:
            self.pages[path] += 1

    def open_session(self, user: str, protocol: str) -> str:
        cookie = secrets.token_urlsafe(24)
        with self._lock:
            self.sessions[cookie] = user
            self.logins[protocol] += 1
        return cookie


# The ENT's pages behind its session, as the shipped journey map cas-ent.yaml names them.
CLASS_ID, VIRTUAL_CLASS_ID, CHILD_ID = 12, 34, 56
ENT_PAGES = {
    "/cahier-de-textes": "<h1>Cahier de textes</h1><ul><li>Exercices p. 42</li></ul>",
    "/emploi-du-temps": "<h1>Emploi du temps</h1><table><tr><td>8:00 Maths</td></tr></table>",
    "/messagerie": '<h1>Messagerie</h1><ul><li class="message">Bienvenue</li></ul>',
}
VIRTUAL_CLASS_CALL = re.compile(r"/classe-virtuelle/\d+/(?P<action>rejoindre|presence|quitter)")
VIRTUAL_CLASS_STATUS = {"rejoindre": "joined", "presence": "open", "quitter": "left"}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a surge's connections arrive at once


class _EntHandler(http.server.BaseHTTPRequestHandler):
    stand_in: StandInEnt
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass  # quiet: a surge would print one line per request

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        routes = {"/": self._home, "/callback": self._cas_callback, "/oidc/login": self._oidc_login}
        routes |= {"/oidc/callback": self._oidc_callback, "/logout": self._logout}
        routes |= {path: self._page for path in ENT_PAGES}
        route = routes.get(parts.path)
        if route is None:
            self._reply(404, "not found")
        else:
            route(query)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        found = VIRTUAL_CLASS_CALL.fullmatch(parts.path)
        if found is None:
            self._reply(404, "not found")
            return
        user = self._session_user()
        if user is None:
            self._reply(401, "log in first")
            return
        self.stand_in.count(f"/classe-virtuelle/ID/{found['action']}")
        self._reply_json(200, {"status": VIRTUAL_CLASS_STATUS[found["action"]]})

    # ---- pages ------------------------------------------------------------------------------------------

    def _home(self, query: dict[str, str]) -> None:
        user = self._session_user() or self._bearer_user()
        if user is None:
            self._reply(401, "log in first")
            return
        self.stand_in.count("/")
        # What the journey map reads: the class, a pupil's virtual class (open), a parent's child.
        listed = f'<li class="class" data-class-id="{CLASS_ID}">3e B</li>'
        if user.startswith("eleve."):
            listed += (
                f'<li class="virtual-class" data-class-id="{CLASS_ID}" data-id="{VIRTUAL_CLASS_ID}" '
                'data-status="open">Cours du matin</li>'
            )
        if user.startswith("parent."):
            listed += f'<li class="child" data-child-id="{CHILD_ID}">Enfant</li>'
        self._reply(200, f"<h1>ENT</h1><p>Bonjour {user}</p><ul>{listed}</ul>")

    def _page(self, query: dict[str, str]) -> None:
        """A page of the ENT behind its session (homework, timetable, messages)."""
        if self._session_user() is None:
            self._reply(401, "log in first")
            return
        path = urlsplit(self.path).path
        self.stand_in.count(path)
        self._reply(200, ENT_PAGES[path])

    def _logout(self, query: dict[str, str]) -> None:
        """The ENT's session ends; the browser goes on to the portal's logout, as an ENT behind an SSO does."""
        cookie = self._session_cookie()
        if cookie is None or self.stand_in.sessions.pop(cookie, None) is None:
            self._reply(401, "no session")
            return
        self.stand_in.count("/logout")
        self._reply(302, "", location=f"{self._sso().portal_url}/?logout=1")

    def _cas_callback(self, query: dict[str, str]) -> None:
        """The CAS service: the ticket is validated server to server (CAS 3.0), then a session opens."""
        sso = self._sso()
        ticket = query.get("ticket", "")
        validation = f"{sso.cas_url}/p3/serviceValidate?" + urlencode(
            {"service": self.stand_in.service_url, "ticket": ticket}
        )
        status, _, body = http_request("GET", validation)
        user = _cas_user(body) if status == 200 else None
        if user is None:
            self._reply(403, f"ticket not validated: {body.decode(errors='replace')[:200]}")
            return
        self._reply(200, f"<p>Bonjour {user}</p>", cookie=self.stand_in.open_session(user, "cas"))

    def _oidc_login(self, query: dict[str, str]) -> None:
        """The ENT's own start of the code flow: state, nonce and a PKCE verifier kept here, then the OP."""
        sso = self._sso()
        state, nonce, verifier = (secrets.token_urlsafe(24) for _ in range(3))
        with self.stand_in._lock:
            self.stand_in.pending[state] = (verifier, nonce)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        authorize = f"{sso.issuer}/oauth2/authorize?" + urlencode(
            {
                "response_type": "code",
                "client_id": OIDC_CLIENT_ID,
                "redirect_uri": self.stand_in.redirect_uri,
                "scope": "openid profile email",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        self._reply(302, "", location=authorize)

    def _oidc_callback(self, query: dict[str, str]) -> None:
        """The redirect URI. A flow the ENT started: the code is redeemed (client secret and PKCE verifier),
        the ID token checked, a session opened. Another client's flow (one that redeems its code itself):
        a plain landing page, the code left alone."""
        with self.stand_in._lock:
            started = self.stand_in.pending.pop(query.get("state", ""), None)
        if started is None:
            self._reply(200, "<p>Signed in.</p>")
            return
        verifier, nonce = started
        sso = self._sso()
        status, _, body = http_request(
            "POST",
            f"{sso.issuer}/oauth2/token",
            form={
                "grant_type": "authorization_code",
                "code": query.get("code", ""),
                "redirect_uri": self.stand_in.redirect_uri,
                "client_id": OIDC_CLIENT_ID,
                "client_secret": sso.client_secret,
                "code_verifier": verifier,
            },
        )
        if status != 200:
            self._reply(403, f"code not redeemed: HTTP {status} {body.decode(errors='replace')[:200]}")
            return
        claims = verified_id_token(json.loads(body)["id_token"], sso, nonce)
        self._reply(200, f"<p>Bonjour {claims['sub']}</p>", cookie=self.stand_in.open_session(claims["sub"], "oidc"))

    # ---- helpers ----------------------------------------------------------------------------------------

    def _sso(self) -> LemonLdap:
        assert self.stand_in.sso is not None, "the stand-in ENT is told its SSO server before any login"
        return self.stand_in.sso

    def _session_cookie(self) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "ent_session":
                return value
        return None

    def _session_user(self) -> str | None:
        cookie = self._session_cookie()
        return self.stand_in.sessions.get(cookie) if cookie else None

    def _bearer_user(self) -> str | None:
        authorization = self.headers.get("Authorization") or ""
        if not authorization.startswith("Bearer ") or self.stand_in.sso is None:
            return None
        status, _, body = http_request(
            "GET", f"{self.stand_in.sso.issuer}/oauth2/userinfo", headers={"Authorization": authorization}
        )
        return json.loads(body).get("sub") if status == 200 else None

    def _reply_json(self, status: int, data: object) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _reply(self, status: int, text: str, *, cookie: str | None = None, location: str | None = None) -> None:
        self._send(
            status, f"<!doctype html><title>ENT</title>{text}".encode(), "text/html; charset=utf-8", cookie, location
        )

    def _send(
        self, status: int, body: bytes, content_type: str, cookie: str | None = None, location: str | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if cookie:
            self.send_header("Set-Cookie", f"ent_session={cookie}; Path=/; HttpOnly")
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)


def _cas_user(xml: bytes) -> str | None:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    return root.findtext("{http://www.yale.edu/tp/cas}authenticationSuccess/{http://www.yale.edu/tp/cas}user")


# ---- ID tokens ----------------------------------------------------------------------------------------------


def verified_id_token(token: str, sso: LemonLdap, nonce: str) -> dict[str, Any]:
    """The claims of an RS256 ID token whose signature checks against the OP's JWKS and whose issuer,
    audience, nonce and expiry are right (OpenID Connect Core 1.0, 3.1.3.7); ValueError otherwise."""
    header_part, payload_part, signature_part = token.split(".")
    header = json.loads(_b64url(header_part))
    if header.get("alg") != "RS256":
        raise ValueError(f"ID token signed with {header.get('alg')!r}, expected RS256")
    status, _, body = http_request("GET", f"{sso.issuer}/oauth2/jwks")
    keys = [key for key in json.loads(body)["keys"] if key.get("kid") == header.get("kid")]
    if status != 200 or not keys:
        raise ValueError(f"no key {header.get('kid')!r} in the OP's JWKS")
    modulus = int.from_bytes(_b64url(keys[0]["n"]), "big")
    exponent = int.from_bytes(_b64url(keys[0]["e"]), "big")
    if not _rs256_valid(f"{header_part}.{payload_part}".encode(), _b64url(signature_part), modulus, exponent):
        raise ValueError("ID token signature does not verify")
    claims = json.loads(_b64url(payload_part))
    audience = claims.get("aud")
    if claims.get("iss") != sso.issuer or OIDC_CLIENT_ID not in (
        audience if isinstance(audience, list) else [audience]
    ):
        raise ValueError(f"ID token for {claims.get('aud')!r} from {claims.get('iss')!r}")
    if claims.get("nonce") != nonce or claims.get("exp", 0) <= time.time():
        raise ValueError("ID token replayed or expired")
    return claims


# DER prefix of a SHA-256 DigestInfo (RFC 8017, 9.2 note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _rs256_valid(message: bytes, signature: bytes, modulus: int, exponent: int) -> bool:
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017, 8.2.2): the signature, raised to the public exponent, must be
    exactly the padded DigestInfo of the message."""
    size = (modulus.bit_length() + 7) // 8
    if len(signature) != size:
        return False
    decoded = pow(int.from_bytes(signature, "big"), exponent, modulus).to_bytes(size, "big")
    digest_info = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(digest_info) - 3) + b"\x00" + digest_info
    return hmac.compare_digest(decoded, expected)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---- together -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SsoSetup:
    sso: LemonLdap
    ent: StandInEnt
    accounts: list[Account]
    accounts_csv: Path  # the same accounts, as `schoolsurge run --accounts` reads them


@contextlib.contextmanager
def sso_with_stand_in(accounts: list[Account]) -> Iterator[tuple[LemonLdap, StandInEnt]]:
    """The stand-in ENT, then LemonLDAP::NG registered for it (each needs the other's URL)."""
    with StandInEnt() as ent, LemonLdap(accounts, ent.service_url, ent.redirect_uri) as sso:
        ent.sso = sso
        yield sso, ent


@pytest.fixture(scope="session")
def lemonldap_sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SsoSetup]:
    """LemonLDAP::NG and its stand-in ENT for the whole session, with an account for each person of a small
    surge (skipped, with the reason, where the packages are not installed)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    accounts = make_accounts(**ACCOUNTS_PER_ROLE)
    accounts_csv = write_accounts_csv(accounts, tmp_path_factory.mktemp("lemonldap") / "accounts.csv")
    with sso_with_stand_in(accounts) as (sso, ent):
        yield SsoSetup(sso, ent, accounts, accounts_csv)
