"""The embedded single sign-on against the Apereo CAS Protocol 3.0 specification, over real HTTP: the login form
and its hidden fields, gateway and renew, the form again after wrong credentials, ticket validation at
/cas/validate (1.0), /cas/serviceValidate (2.0) and /cas/p3/serviceValidate (3.0, attributes), every failure
code, single-use tickets across endpoints, and GET /cas/logout.

One platform of its own (two workers), with a second registered service, a short database lock timeout (to
see INTERNAL_ERROR) and short-lived tickets (to see them expire)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from conftest import CALLBACK, Client, Reply, login, login_form, post_credentials, service_url, ticket_of

from schoolsurge.accounts import Roster
from schoolsurge.platform.process import PlatformProcess

SEED, SIZE, COST = 2021, 60, 4
CAS = "{http://www.yale.edu/tp/cas}"
NOTES = "http://notes.example/cas-client"  # another registered service
EVIL = "http://evil.example/ent/auth/callback"
TICKET_TTL = 2.0
ROSTER = Roster(SEED, SIZE)


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    root = tmp_path_factory.mktemp("cas")
    args = ["--service", NOTES, "--db-timeout", "0.5", "--ticket-ttl", str(TICKET_TTL)]
    with PlatformProcess(
        seed=SEED,
        size=SIZE,
        hash_cost=COST,
        profile="resized",
        cache_dir=platform_cache,
        log_path=root / "log",
        startup_timeout=60,
        extra_args=args,
    ) as proc:
        yield proc


# ---- helpers --------------------------------------------------------------------------------------------


class FormReader(HTMLParser):
    """Every form of a page: (method, action, {input name: (type, value)})."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, str, dict[str, tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append((attributes.get("method", "get").lower(), attributes.get("action", ""), {}))
        elif tag == "input" and self.forms:
            self.forms[-1][2][attributes["name"]] = (attributes.get("type", "text"), attributes.get("value", ""))


def the_form(reply: Reply) -> dict[str, tuple[str, str]]:
    """The page's one login form, posting to /cas/login: its inputs."""
    assert reply.headers["Content-Type"].startswith("text/html"), reply.headers["Content-Type"]
    reader = FormReader()
    reader.feed(reply.text)
    assert len(reader.forms) == 1, reply.text
    method, action, inputs = reader.forms[0]
    assert (method, action) == ("post", "/cas/login")
    assert inputs["username"][0] == "text" and inputs["password"][0] == "password"
    return inputs


def hidden_fields(inputs: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {name: value for name, (kind, value) in inputs.items() if kind == "hidden"}


def ticket_for(client: Client, service: str, role: str = "student", index: int = 1) -> str:
    """A genuine service ticket issued to `service`: the form, every hidden field back, the credentials."""
    username, password = ROSTER.credentials(role, index)
    form = client.get(f"/cas/login?{urlencode({'service': service})}")
    fields = {**hidden_fields(the_form(form)), "username": username, "password": password}
    reply = client.post("/cas/login", form=fields)
    assert reply.status == 302, reply.text
    match = re.fullmatch(re.escape(service) + r"\?ticket=(ST-[A-Za-z0-9-]+)", reply.headers["Location"])
    assert match, reply.headers["Location"]
    return match.group(1)


def validation_path(endpoint: str, service: str | None, ticket: str | None, **extra: str) -> str:
    query = {name: value for name, value in (("service", service), ("ticket", ticket)) if value is not None}
    return f"{endpoint}?{urlencode({**query, **extra})}"


def service_response(reply: Reply) -> ElementTree.Element:
    """The parsed CAS serviceResponse of a reply: XML, in the CAS namespace, one child."""
    assert reply.headers["Content-Type"].startswith("application/xml"), reply.headers["Content-Type"]
    root = ElementTree.fromstring(reply.body)
    assert root.tag == f"{CAS}serviceResponse"
    assert len(root) == 1
    return root


def failure_code(reply: Reply) -> str:
    """The code of an authenticationFailure (its text says why)."""
    assert reply.status == 200, reply.text
    failure = service_response(reply).find(f"{CAS}authenticationFailure")
    assert failure is not None, reply.text
    assert (failure.text or "").strip(), reply.text
    return failure.get("code", "")


def success_of(reply: Reply) -> ElementTree.Element:
    assert reply.status == 200, reply.text
    success = service_response(reply).find(f"{CAS}authenticationSuccess")
    assert success is not None, reply.text
    return success


# ---- /login ---------------------------------------------------------------------------------------------


def test_the_login_form_carries_the_hidden_fields_of_apereo_cas(cas: PlatformProcess) -> None:
    client, service = Client(cas.base_url), service_url(cas.base_url)
    reply = client.get(f"/cas/login?{urlencode({'service': service})}")
    assert reply.status == 200
    hidden = hidden_fields(the_form(reply))
    assert set(hidden) == {"execution", "_eventId", "service"}
    assert hidden["_eventId"] == "submit" and hidden["service"] == service and len(hidden["execution"]) >= 32
    # CAS 3.0 appendix B: pages around a login are never cached.
    assert reply.headers["Cache-Control"] == "no-store" and reply.headers["Pragma"] == "no-cache"
    # Each form gets its own one-time token.
    assert (
        hidden_fields(the_form(client.get(f"/cas/login?{urlencode({'service': service})}")))["execution"]
        != (hidden["execution"])
    )


def test_a_client_posting_every_hidden_field_back_gets_a_service_ticket(cas: PlatformProcess) -> None:
    client = Client(cas.base_url)
    ticket = ticket_for(client, service_url(cas.base_url))
    # CAS 3.0 sections 3.1.1 and 3.7: ST-, then letters, digits and hyphens only; at most 32 characters.
    assert re.fullmatch(r"ST-[A-Za-z0-9-]+", ticket) and len(ticket) <= 32
    # _eventId is Apereo's webflow event: only "submit" logs in.
    username, password = ROSTER.credentials("student", 1)
    form = {"username": username, "password": password, "execution": login_form(client), "_eventId": "cancel"}
    reply = client.post("/cas/login", form={**form, "service": service_url(cas.base_url)})
    assert reply.status == 422 and reply.json()["detail"].startswith("_eventId:")


def test_without_a_service_the_form_then_a_logged_in_page(cas: PlatformProcess) -> None:
    client = Client(cas.base_url)
    reply = client.get("/cas/login")
    assert reply.status == 200
    hidden = hidden_fields(the_form(reply))
    assert set(hidden) == {"execution", "_eventId"}
    username, password = ROSTER.credentials("teacher", 1)
    reply = client.post("/cas/login", form={**hidden, "username": username, "password": password})
    # CAS 3.0 section 2.2.4: no service, no redirect: a page saying the login worked, and no ticket anywhere.
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    assert reply.headers["Location"] is None and "ST-" not in reply.text and "authentifié" in reply.text
    assert client.cookies == {}


def test_gateway_goes_back_to_the_service_without_a_ticket(cas: PlatformProcess) -> None:
    client, service = Client(cas.base_url), service_url(cas.base_url)
    # CAS 3.0 section 2.1.1: no single sign-on session (there are none here): back to the service, no ticket.
    reply = client.get(f"/cas/login?{urlencode({'service': service, 'gateway': 'true'})}")
    assert reply.status == 302 and reply.headers["Location"] == service
    # renew wins over gateway (the recommended reading); renew alone, or gateway without a service: the form.
    for query in ({"service": service, "gateway": "true", "renew": "true"}, {"service": service, "renew": "true"}):
        reply = client.get(f"/cas/login?{urlencode(query)}")
        assert reply.status == 200 and "execution" in hidden_fields(the_form(reply)), query
    assert client.get("/cas/login?gateway=true").status == 200
    # Never back to a service that is not registered.
    reply = client.get(f"/cas/login?{urlencode({'service': EVIL, 'gateway': 'true'})}")
    assert reply.status == 403 and reply.headers["Location"] is None


def test_wrong_credentials_show_the_form_again_with_401(cas: PlatformProcess) -> None:
    client, service = Client(cas.base_url), service_url(cas.base_url)
    username, password = ROSTER.credentials("parent", 1)
    used = login_form(client)
    reply = post_credentials(client, username, "not-the-password", used)
    # CAS 3.0 section 2.2.4: back to /login as a credential requestor, saying why.
    assert reply.status == 401 and "invalid username or password" in reply.text
    hidden = hidden_fields(the_form(reply))
    assert hidden["service"] == service and hidden["_eventId"] == "submit" and hidden["execution"] != used
    assert "not-the-password" not in reply.text and username not in reply.text  # never echoes what was typed
    # The new form works.
    reply = client.post("/cas/login", form={**hidden, "username": username, "password": password})
    assert reply.status == 302 and "?ticket=ST-" in reply.headers["Location"]
    # A replayed or made-up form is still refused with JSON, as before.
    reply = post_credentials(client, username, password, used)
    assert reply.status == 401 and "reload it" in reply.json()["detail"]


# ---- validation -----------------------------------------------------------------------------------------


def test_service_validate_answers_a_cas_2_success(cas: PlatformProcess) -> None:
    client, service = Client(cas.base_url), service_url(cas.base_url)
    ticket = ticket_for(client, service, "student", 2)
    success = success_of(client.get(validation_path("/cas/serviceValidate", service, ticket)))
    assert success.findtext(f"{CAS}user") == ROSTER.credentials("student", 2)[0]
    assert success.find(f"{CAS}attributes") is None  # CAS 2.0: the user only
    assert success.find(f"{CAS}proxyGrantingTicket") is None


@pytest.mark.parametrize(("role", "index"), [("student", 3), ("teacher", 3), ("parent", 3)])
def test_p3_service_validate_adds_the_accounts_attributes(cas: PlatformProcess, role: str, index: int) -> None:
    _, me = login(cas.base_url, ROSTER, role, index)
    client, service = Client(cas.base_url), service_url(cas.base_url)
    before = time.time()
    ticket = ticket_for(client, service, role, index)
    success = success_of(client.get(validation_path("/cas/p3/serviceValidate", service, ticket)))
    assert success.findtext(f"{CAS}user") == ROSTER.credentials(role, index)[0]
    attributes = success.find(f"{CAS}attributes")
    assert attributes is not None
    values = {child.tag.removeprefix(CAS): child.text for child in attributes}
    # The three the CAS 3.0 schema (appendix A) requires, in its order, then the account's own.
    assert list(values)[:3] == ["authenticationDate", "longTermAuthenticationRequestTokenUsed", "isFromNewLogin"]
    authenticated = datetime.fromisoformat((values["authenticationDate"] or "").replace("Z", "+00:00"))
    assert authenticated.tzinfo == UTC and before - 1 <= authenticated.timestamp() <= time.time() + 1
    assert values["longTermAuthenticationRequestTokenUsed"] == "false" and values["isFromNewLogin"] == "true"
    assert values["role"] == role and values["displayName"] == me["display_name"]
    if role == "student":
        assert values["classId"] == str(ROSTER.class_of_pupil(index))
    else:
        assert "classId" not in values


def test_the_json_format_of_cas_3(cas: PlatformProcess) -> None:
    client, service = Client(cas.base_url), service_url(cas.base_url)
    username = ROSTER.credentials("student", 4)[0]
    ticket = ticket_for(client, service, "student", 4)
    reply = client.get(validation_path("/cas/p3/serviceValidate", service, ticket, format="JSON"))
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/json"
    success = reply.json()["serviceResponse"]["authenticationSuccess"]
    assert success["user"] == username
    assert success["attributes"]["role"] == "student"
    assert success["attributes"]["classId"] == ROSTER.class_of_pupil(4)
    assert success["attributes"]["isFromNewLogin"] is True
    reply = client.get(validation_path("/cas/serviceValidate", service, ticket, format="json"))
    assert reply.json() == {
        "serviceResponse": {
            "authenticationFailure": {"code": "INVALID_TICKET", "description": f"ticket {ticket} not recognized"}
        }
    }
    # A format this server does not speak: INVALID_REQUEST, in XML, and the ticket is not used up.
    ticket = ticket_for(client, service, "student", 4)
    assert failure_code(client.get(validation_path("/cas/serviceValidate", service, ticket, format="YAML"))) == (
        "INVALID_REQUEST"
    )
    success = success_of(client.get(validation_path("/cas/serviceValidate", service, ticket, format="xml")))
    assert success.findtext(f"{CAS}user") == username


@pytest.mark.parametrize("endpoint", ["/cas/serviceValidate", "/cas/p3/serviceValidate"])
def test_every_failure_code(cas: PlatformProcess, endpoint: str) -> None:
    client, ent = Client(cas.base_url), service_url(cas.base_url)

    def code(service: str | None, ticket: str | None, **extra: str) -> str:
        return failure_code(client.get(validation_path(endpoint, service, ticket, **extra)))

    def still_valid(ticket: str, service: str = ent) -> bool:
        reply = client.get(validation_path(endpoint, service, ticket))
        return service_response(reply).find(f"{CAS}authenticationSuccess") is not None

    # INVALID_REQUEST: service or ticket missing (or empty); the ticket is not used up.
    ticket = ticket_for(client, ent)
    for service, given in ((ent, None), (None, ticket), (None, None), ("", ticket), (ent, "")):
        assert code(service, given) == "INVALID_REQUEST", (service, given)
    assert still_valid(ticket)
    # INVALID_TICKET_SPEC: not a service ticket (a proxy ticket, a ticket-granting ticket, anything else).
    for other in ("PT-1856392-b98xZrQN4p90ASrw96c8", "TGT-1-abc", "st-lowercase", "<ticket>"):
        assert code(ent, other) == "INVALID_TICKET_SPEC", other
    # INVALID_TICKET: unknown, already used, expired.
    assert code(ent, "ST-0000000000000000000000000000") == "INVALID_TICKET"
    ticket = ticket_for(client, ent)
    assert still_valid(ticket)
    assert code(ent, ticket) == "INVALID_TICKET"
    expired = ticket_for(client, ent)
    time.sleep(TICKET_TTL + 0.2)
    assert code(ent, expired) == "INVALID_TICKET"
    # INVALID_SERVICE: issued for another (registered) service, or a service that is not registered. CAS 3.0
    # section 2.5.3: the ticket is then invalidated.
    ticket = ticket_for(client, NOTES)
    assert code(ent, ticket) == "INVALID_SERVICE"
    assert code(NOTES, ticket) == "INVALID_TICKET"
    ticket = ticket_for(client, ent)
    assert code(EVIL, ticket) == "INVALID_SERVICE"
    assert code(ent, ticket) == "INVALID_TICKET"
    # The other service redeems its own tickets; the registered spelling is compared, not the raw one.
    assert still_valid(ticket_for(client, NOTES), "HTTP://NOTES.EXAMPLE:80/cas-client")
    # UNAUTHORIZED_SERVICE_PROXY: no proxy-granting tickets here, so a pgtUrl fails the validation (and uses the
    # ticket up).
    ticket = ticket_for(client, ent)
    assert code(ent, ticket, pgtUrl="https://notes.example/proxy-callback") == "UNAUTHORIZED_SERVICE_PROXY"
    assert code(ent, ticket) == "INVALID_TICKET"


def test_internal_error_while_the_database_is_locked(cas: PlatformProcess) -> None:
    client, ent = Client(cas.base_url), service_url(cas.base_url)
    ticket = ticket_for(client, ent)
    path = validation_path("/cas/p3/serviceValidate", ent, ticket)
    lock = sqlite3.connect(cas.db, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # the write lock: the ticket cannot be used up
        reply = client.get(path)
        cas1 = client.get(validation_path("/cas/validate", ent, ticket))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    # INTERNAL_ERROR, and overload as everywhere on this platform: 503 with Retry-After.
    assert reply.status == 503 and int(reply.headers["Retry-After"]) >= 1
    failure = service_response(reply).find(f"{CAS}authenticationFailure")
    assert failure is not None and failure.get("code") == "INTERNAL_ERROR"
    assert (cas1.status, cas1.text) == (503, "no\n\n")
    # The ticket was not used up: the service may retry.
    assert success_of(client.get(path)).findtext(f"{CAS}user") == ROSTER.credentials("student", 1)[0]


def test_cas_1_validate_answers_yes_or_no(cas: PlatformProcess) -> None:
    client, ent = Client(cas.base_url), service_url(cas.base_url)
    username = ROSTER.credentials("teacher", 2)[0]
    ticket = ticket_for(client, ent, "teacher", 2)
    reply = client.get(validation_path("/cas/validate", ent, ticket))
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    assert reply.text == f"yes\n{username}\n"
    for service, given in ((ent, ticket), (ent, None), (None, "ST-x"), (ent, "PT-123"), (EVIL, "ST-x")):
        reply = client.get(validation_path("/cas/validate", service, given))
        assert (reply.status, reply.text) == (200, "no\n\n"), (service, given)


def redeemed(client: Client, endpoint: str, ticket: str) -> bool:
    """Does `endpoint` accept the ENT's ticket (a validation, or the ENT's own callback)?"""
    if endpoint == CALLBACK:
        return Client(client.base_url).get(f"{CALLBACK}?ticket={ticket}").status == 200
    reply = client.get(validation_path(endpoint, service_url(client.base_url), ticket))
    if endpoint == "/cas/validate":
        return reply.text.startswith("yes\n")
    return service_response(reply).find(f"{CAS}authenticationSuccess") is not None


@pytest.mark.parametrize("first", ["/cas/validate", "/cas/serviceValidate", "/cas/p3/serviceValidate", CALLBACK])
def test_a_ticket_is_single_use_across_endpoints(cas: PlatformProcess, first: str) -> None:
    client = Client(cas.base_url)
    ticket = ticket_for(client, service_url(cas.base_url), "student", 5)
    assert redeemed(client, first, ticket)
    for endpoint in ("/cas/validate", "/cas/serviceValidate", "/cas/p3/serviceValidate", CALLBACK):
        assert not redeemed(client, endpoint, ticket), endpoint


# ---- /logout --------------------------------------------------------------------------------------------


def test_get_logout_without_a_service_shows_a_logged_out_page(cas: PlatformProcess) -> None:
    client, _ = login(cas.base_url, ROSTER, "student", 6)
    cookie = client.cookies["ent_session"]
    reply = client.get("/cas/logout")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    assert "déconnecté" in reply.text and "ent_session" not in client.cookies
    assert Client(cas.base_url, cookies={"ent_session": cookie}).get("/api/dashboard").status == 401
    # Without a session, or naming a service that is not registered: the page, never a redirect.
    for path in ("/cas/logout", f"/cas/logout?{urlencode({'service': EVIL})}", "/cas/logout?service=javascript:x"):
        reply = Client(cas.base_url).get(path)
        assert reply.status == 200 and reply.headers["Location"] is None and "evil" not in reply.text, path


def test_get_logout_with_a_registered_service_redirects_there(cas: PlatformProcess) -> None:
    for service in (service_url(cas.base_url), NOTES):
        client, _ = login(cas.base_url, ROSTER, "parent", 2)
        cookie = client.cookies["ent_session"]
        reply = client.get(f"/cas/logout?{urlencode({'service': service})}")
        assert reply.status == 302 and reply.headers["Location"] == service
        assert "ent_session" not in client.cookies
        assert Client(cas.base_url, cookies={"ent_session": cookie}).get("/api/dashboard").status == 401
    # POST /cas/logout is kept, in JSON.
    client, _ = login(cas.base_url, ROSTER, "parent", 2)
    reply = client.post("/cas/logout")
    assert (reply.status, reply.json()) == (200, {"status": "logged out"}) and "ent_session" not in client.cookies


def test_the_schema_lists_the_cas_endpoints(cas: PlatformProcess) -> None:
    paths = Client(cas.base_url).get("/openapi.json").json()["paths"]
    assert set(paths["/cas/login"]) == {"get", "post"} and set(paths["/cas/logout"]) == {"get", "post"}
    for path in ("/cas/validate", "/cas/serviceValidate", "/cas/p3/serviceValidate"):
        assert set(paths[path]) == {"get"}, path
    # The ticket flows: ticket_of (conftest) still reads the ENT's redirect.
    client = Client(cas.base_url)
    assert ticket_of(post_credentials(client, *ROSTER.credentials("student", 7))).startswith("ST-")
