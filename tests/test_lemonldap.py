"""A real, independent SSO server: small surges through LemonLDAP::NG (Debian's packages) with the built-in
clients configured by options only, as a platform engineer would run them (docs/your-platform.md), the same
through the shipped journey map of a CAS-fronted ENT (WebClient, by CAS and by OpenID Connect), each way a
login fails classified, and its OpenID Connect provider proven end to end by a browser-like code flow.

The set-up (LemonLDAP's portal behind nginx, a stand-in ENT, the accounts) is tests/lemonldap.py; every test
here is skipped with its reason where the packages are not installed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import lemonldap
import pandas as pd
import pytest
import yaml
from conftest import smoke_half_hour
from lemonldap import (
    OIDC_CLIENT_ID,
    PASSWORD_FIELD,
    USERNAME_FIELD,
    Account,
    SsoSetup,
    http_request,
    verified_id_token,
)
from lemonldap import lemonldap_sso as lemonldap_sso  # the fixture, used by name below
from locust.env import Environment

from schoolsurge.clients import CasClient, ClientContext, ClientSettings, StepFailed
from schoolsurge.clients.journey import load_journey_map
from schoolsurge.clients.login_failures import LoginFailure, login_failure_message
from schoolsurge.clients.login_form import LoginForm, parse_login_form
from schoolsurge.engine.http import GuardedOpener

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
# About 28 people in 7.5 seconds (smoke's hour at speed 480): a small surge, each with an account of their own,
# arriving no faster than 46 in 15 s did. The journey-map surges replay smoke's first half hour: 23 people in
# 7.5 s, the same rate, teachers and secondary pupils, who take every step of the map.
SURGE_OPTIONS = ["--scale", "6e-6", "--speed", "480"]
JOURNEY_SURGE_OPTIONS = ["--scale", "6.5e-6", "--speed", "240"]
SURGE_TIMEOUT_S = 600


def surge(
    setup: SsoSetup,
    client_options: list[str],
    reports_dir: Path,
    scenario: Path = SMOKE,
    surge_options: list[str] = SURGE_OPTIONS,
) -> tuple[Path, str]:
    """`schoolsurge run scenarios/smoke.yaml` against the stand-in ENT behind LemonLDAP, in its own process as
    the user types it: (the run directory, what it printed). Fails with the output and the SSO's logs unless
    it exits 0."""
    command = [sys.executable, "-m", "schoolsurge", "run", str(scenario), "--target", setup.ent.base_url]
    command += [*surge_options, "--accounts", str(setup.accounts_csv), "--reports-dir", str(reports_dir)]
    finished = subprocess.run(
        [*command, *client_options], capture_output=True, text=True, timeout=SURGE_TIMEOUT_S, cwd=ROOT, check=False
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, f"exit {finished.returncode}\n{output[-4000:]}\n{setup.sso.log_tail()}"
    (run_dir,) = [path for path in reports_dir.iterdir() if (path / "sessions.csv").exists()]
    return run_dir, output


def sessions_total(run_dir: Path, column: str) -> int:
    return int(pd.read_csv(run_dir / "sessions.csv")[column].sum())


def request_counts(run_dir: Path, name: str) -> tuple[int, int]:
    """(requests, failures) of one step in Locust's statistics."""
    stats = pd.read_csv(run_dir / "locust_stats.csv")
    rows = stats[stats["Name"] == name]
    return int(rows["Request Count"].sum()), int(rows["Failure Count"].sum())


def assert_not_supported_reported(run_dir: Path, steps: set[str]) -> None:
    """The steps the client does not perform were skipped, counted (sessions.csv, client_steps.json) and listed
    in the report; no step crashed in the client."""
    record = json.loads((run_dir / "client_steps.json").read_text())
    skipped = record["not_supported"]
    assert steps <= set(skipped), skipped
    assert sum(skipped.values()) == sessions_total(run_dir, "steps_not_supported") > 0
    assert record["crashes"] == [] and sessions_total(run_dir, "client_errors") == 0
    report = (run_dir / "report.html").read_text()
    listed = report[report.index("Journey steps this client does not perform") :]
    assert all(f"<tr><td>{step}</td>" in listed for step in skipped)


def test_a_machine_without_the_packages_is_told_which_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian machine: no dpkg-query to ask")
    listed = tmp_path / "packages"
    listed.write_text("# a comment\nbase-files\nschoolsurge-no-such-package\n", encoding="utf-8")
    monkeypatch.setattr(lemonldap, "PACKAGES_FILE", listed)
    reason = lemonldap.unavailable_reason()
    assert reason is not None and "\n" not in reason
    assert "schoolsurge-no-such-package not installed" in reason and "base-files" not in reason


# ---- CAS ------------------------------------------------------------------------------------------------------


def test_a_surge_logs_everyone_in_through_lemonldap_s_cas_by_options_only(
    lemonldap_sso: SsoSetup, tmp_path: Path
) -> None:
    """No --cas-username-field: the client reads LemonLDAP's field names (`user`, `password`) from its form."""
    setup = lemonldap_sso
    cas_logins_before = setup.ent.logins["cas"]
    run_dir, output = surge(
        setup,
        [
            "--client",
            "schoolsurge.clients.cas:CasClient",
            "--cas-url",
            setup.sso.cas_url,
            "--service-url",
            setup.ent.service_url,
            "--home-url",
            f"{setup.ent.base_url}/",
        ],
        tmp_path,
    )
    started = sessions_total(run_dir, "started")
    assert started == sessions_total(run_dir, "scheduled") > 20, output[-2000:]
    assert sessions_total(run_dir, "logins_succeeded") == started, output[-2000:]
    assert sessions_total(run_dir, "logins_failed") == 0
    # Each person's ticket went to the ENT, which had LemonLDAP validate it and opened a session.
    assert setup.ent.logins["cas"] - cas_logins_before == started
    assert request_counts(run_dir, "sso: ticket callback") == (started, 0)
    home_pages, home_failures = request_counts(run_dir, "home")
    assert home_pages >= started and home_failures == 0  # the ENT's page, read with its session cookie


def test_lemonldap_refuses_a_wrong_password_and_a_service_it_does_not_know(lemonldap_sso: SsoSetup) -> None:
    """What the surge's success rests on: LemonLDAP checks passwords and issues tickets to its registered
    service only, so a login counted in the surge is a real one. Its refusals are the login page again, HTTP
    200 with an error code in `trmsg` (5: bad credentials, 107: unknown partner), never a redirect."""
    setup, account = lemonldap_sso, lemonldap_sso.accounts[0]
    for service, password, refusal in (
        (setup.ent.service_url, "not-the-password", 'trmsg="5"'),
        ("http://127.0.0.1:9/not-the-ent", account.password, 'trmsg="107"'),
    ):
        login = f"{setup.sso.cas_url}/login?" + urlencode({"service": service})
        browser = Browser()
        form = browser.form(login)
        status, headers, body = browser.send(
            "POST", login, {**form, USERNAME_FIELD: account.username, PASSWORD_FIELD: password}
        )
        assert status == 200 and "location" not in headers and refusal in body.decode(), (service, status, headers)


# ---- why a login failed, as the client says it -----------------------------------------------------------------


class _NoToken(CasClient):
    """Leaves LemonLDAP's one-time `token` out of the form it posts (a form replayed without it)."""

    def _login_form(self, who: dict[str, str]) -> tuple[LoginForm, str, str]:
        form, username_field, password_field = super()._login_form(who)
        form.hidden.pop("token", None)
        return form, username_field, password_field


def failed_login(
    setup: SsoSetup, account: Account, client_class: type[CasClient] = CasClient, password: str = "", **settings: str
) -> tuple[str, list[str]]:
    """One CasClient login through LemonLDAP that must fail: (its message, the failure messages recorded)."""
    environment = Environment(host=setup.ent.base_url)
    opener = GuardedOpener(None)
    recorded: list[str] = []
    environment.events.request.add_listener(
        lambda exception, **_: recorded.append(str(exception)) if exception else None
    )
    options = {"cas_url": setup.sso.cas_url, "service_url": setup.ent.service_url, **settings}
    client = client_class(
        ClientContext(
            http=opener.new_connection(environment),
            settings=ClientSettings(**options),
            open_connection=lambda: opener.new_connection(environment),
        )
    )
    with pytest.raises(StepFailed) as failed:
        client.login(account.username, password or account.password)
    assert account.password not in str(failed.value) and account.username not in str(failed.value)
    return str(failed.value), recorded


@pytest.mark.parametrize(
    ("case", "kind", "detail"),
    [
        ("wrong password", LoginFailure.CREDENTIALS_REFUSED, "wrong credentials, LemonLDAP error 5"),
        ("username field given wrong", LoginFailure.FIELDS_NOT_FOUND, "no input 'username' in the form"),
        ("service not registered", LoginFailure.NO_TICKET, "service not registered, LemonLDAP error 107"),
        ("form without its token", LoginFailure.NO_TICKET, "no login token, LemonLDAP error 81"),
        ("ticket for another service", LoginFailure.TICKET_VALIDATION_FAILED, "the service answered HTTP 403"),
    ],
)
def test_each_way_a_login_through_lemonldap_fails_is_named(
    lemonldap_sso: SsoSetup, case: str, kind: LoginFailure, detail: str
) -> None:
    """LemonLDAP refuses with HTTP 200 and its form again, the reason in `trmsg`: the client reads it. Before,
    every one of these was "HTTP 200, expected a redirect with a service ticket"."""
    setup, account = lemonldap_sso, lemonldap_sso.accounts[3]
    arguments: dict[str, Any] = {
        "wrong password": {"password": "not-the-password"},
        "username field given wrong": {"username_field": "username"},
        "service not registered": {"service_url": "http://127.0.0.1:9/not-the-ent"},
        "form without its token": {"client_class": _NoToken},
        # LemonLDAP issues it (a registered service's URL prefix); the ENT validates for its own URL: refused.
        "ticket for another service": {"service_url": f"{setup.ent.service_url}?next=/"},
    }[case]
    message, recorded = failed_login(setup, account, **arguments)
    assert message.startswith(login_failure_message(kind, detail).removesuffix(")")), message
    assert recorded == [message]


# ---- the shipped journey map of a CAS-fronted ENT ---------------------------------------------------------------


def scenario_with_messages(directory: Path) -> Path:
    """Smoke's first half hour (conftest's smoke_half_hour: teachers and secondary pupils, the people who take
    every step of the cas-ent map), with the inbox in every group's behaviour mix."""
    scenario = yaml.safe_load(smoke_half_hour(directory).read_text(encoding="utf-8"))
    for group in scenario["groups"]:
        group["behaviour"] = {**group["behaviour"], "messages": 0.2}
    path = directory / "smoke-with-messages.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("sso", ["cas", "oidc"])
def test_a_surge_walks_the_ent_through_its_journey_map(lemonldap_sso: SsoSetup, tmp_path: Path, sso: str) -> None:
    """WebClient with the shipped cas-ent map: everyone logs in (LemonLDAP's CAS, or its OpenID Connect
    provider by the ENT's own code flow), every step the map names is reached without a failure, and the
    steps it leaves out are counted as not supported."""
    setup = lemonldap_sso
    pages_before = dict(setup.ent.pages)
    if sso == "cas":
        login = ["--cas-url", setup.sso.cas_url, "--service-url", setup.ent.service_url]
    else:
        login = ["--sso", "oidc", "--oidc-issuer", setup.sso.issuer]
        login += ["--oidc-login-url", f"{setup.ent.base_url}/oidc/login"]
    arguments = ["--client", "schoolsurge.clients.web:WebClient", "--journey-map", "cas-ent", *login]
    run_dir, output = surge(setup, arguments, tmp_path, scenario_with_messages(tmp_path), JOURNEY_SURGE_OPTIONS)
    started = sessions_total(run_dir, "started")
    assert started == sessions_total(run_dir, "scheduled") > 20, output[-2000:]
    assert sessions_total(run_dir, "logins_succeeded") == started, output[-2000:]
    stats = pd.read_csv(run_dir / "locust_stats.csv")
    assert int(stats[stats["Name"] != "Aggregated"]["Failure Count"].sum()) == 0, output[-2000:]
    names = {
        "dashboard": "dashboard",
        "homework": "homework",
        "timetable": "timetable",
        "messages": "messages",
        "join_virtual_class": "virtual class: join",
        "heartbeat": "virtual class: heartbeat",
        "leave_virtual_class": "virtual class: leave",
        "logout": "logout",
    }
    assert set(names) == set(load_journey_map("cas-ent").steps)
    for step, name in names.items():
        assert request_counts(run_dir, name)[0] > 0, f"{step} never reached"
    assert sessions_total(run_dir, "virtual_class_joins") > 0
    # Teachers cannot create a virtual class through this map: skipped, counted, never an error, and reported.
    assert_not_supported_reported(run_dir, {"schedule_virtual_class"})
    assert request_counts(run_dir, "sso: logout") == (0, 0)  # the ENT's logout sends the browser on
    served = {path: count - pages_before.get(path, 0) for path, count in setup.ent.pages.items()}
    assert served["/"] == request_counts(run_dir, "dashboard")[0]
    assert served["/logout"] == request_counts(run_dir, "logout")[0]


# ---- OpenID Connect -------------------------------------------------------------------------------------------


class Browser:
    """Cookies kept, no redirect followed: each hop of a flow is seen."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def send(self, method: str, url: str, form: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        status, headers, body = http_request(method, url, form=form, headers={"Cookie": cookie} if cookie else None)
        for header in headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return status, {key.lower(): value for key, value in headers.items()}, body

    def form(self, url: str) -> dict[str, str]:
        """The login page's hidden fields (what a browser sends back), checked to ask for `user` and `password`."""
        status, _, body = self.send("GET", url)
        page = body.decode()
        form = parse_login_form(page, url)
        assert status == 200 and form is not None, page[:500]
        assert f'name="{USERNAME_FIELD}"' in page and f'name="{PASSWORD_FIELD}"' in page
        return form.hidden

    def log_in(self, url: str, username: str, password: str) -> str:
        """The login form at `url`, posted back to it with the credentials: the redirect it answers."""
        form = self.form(url)
        status, headers, body = self.send("POST", url, {**form, USERNAME_FIELD: username, PASSWORD_FIELD: password})
        assert status == 302, body.decode(errors="replace")[:500]
        return urljoin(url, headers["location"])


def test_lemonldap_s_oidc_provider_logs_a_person_in_to_the_ent_by_code_flow_with_pkce(
    lemonldap_sso: SsoSetup,
) -> None:
    """The ENT's own flow, end to end: ENT -> authorize -> login form -> redirect with a code -> the ENT redeems
    it (client secret, PKCE verifier), checks the RS256 ID token against the JWKS -> the ENT's session."""
    setup, account = lemonldap_sso, lemonldap_sso.accounts[1]
    status, _, body = http_request("GET", f"{setup.sso.issuer}/.well-known/openid-configuration")
    discovery = json.loads(body)
    assert status == 200 and discovery["issuer"] == setup.sso.issuer
    assert discovery["authorization_endpoint"] == f"{setup.sso.issuer}/oauth2/authorize"
    assert discovery["token_endpoint"] == f"{setup.sso.issuer}/oauth2/token"
    assert "S256" in discovery["code_challenge_methods_supported"]

    browser = Browser()
    status, headers, _ = browser.send("GET", f"{setup.ent.base_url}/oidc/login")
    authorize = headers["location"]
    assert status == 302 and authorize.startswith(discovery["authorization_endpoint"])
    redirect = browser.log_in(authorize, account.username, account.password)
    assert redirect.startswith(f"{setup.ent.redirect_uri}?") and "code=" in redirect, redirect
    status, _, body = browser.send("GET", redirect)
    assert status == 200 and f"Bonjour {account.username}" in body.decode(), body[:500]
    status, _, body = browser.send("GET", f"{setup.ent.base_url}/")
    assert status == 200 and f"Bonjour {account.username}" in body.decode()


def test_a_client_that_redeems_its_own_code_needs_the_pkce_verifier(lemonldap_sso: SsoSetup) -> None:
    """A client playing browser and relying party (what an OIDC load client does): its code is refused without
    the verifier of its challenge, redeemed with it (client secret by HTTP Basic here, in the form at the
    ENT); the access token then opens the ENT's page."""
    setup, account = lemonldap_sso, lemonldap_sso.accounts[2]
    refused = _token_request(setup, _code(setup, account, challenge_of("the verifier")), "another verifier")
    assert refused[0] == 400 and json.loads(refused[1])["error"] == "invalid_grant"

    nonce = secrets.token_urlsafe(16)
    code = _code(setup, account, challenge_of("the verifier"), nonce)
    status, body = _token_request(setup, code, "the verifier", basic=True)
    assert status == 200, body
    tokens = json.loads(body)
    claims = verified_id_token(tokens["id_token"], setup.sso, nonce)
    assert claims["sub"] == account.username and claims["aud"] in (OIDC_CLIENT_ID, [OIDC_CLIENT_ID])
    status, _, page = http_request(
        "GET", f"{setup.ent.base_url}/", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert status == 200 and f"Bonjour {account.username}" in page.decode()


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _code(setup: SsoSetup, account: Account, challenge: str, nonce: str = "n") -> str:
    """A code from the authorization endpoint, for a browser that logs in with `account`."""
    state = secrets.token_urlsafe(16)
    authorize = f"{setup.sso.issuer}/oauth2/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": OIDC_CLIENT_ID,
            "redirect_uri": setup.ent.redirect_uri,
            "scope": "openid profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    redirect = Browser().log_in(authorize, account.username, account.password)
    query = parse_qs(urlsplit(redirect).query)
    assert query["state"] == [state], redirect
    return query["code"][0]


def _token_request(setup: SsoSetup, code: str, verifier: str, basic: bool = False) -> tuple[int, str]:
    """The code redeemed at the token endpoint, the client authenticated in the form or by HTTP Basic."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": setup.ent.redirect_uri}
    form["code_verifier"] = verifier
    headers = {}
    if basic:
        credentials = base64.b64encode(f"{OIDC_CLIENT_ID}:{setup.sso.client_secret}".encode()).decode()
        headers["Authorization"] = f"Basic {credentials}"
    else:
        form |= {"client_id": OIDC_CLIENT_ID, "client_secret": setup.sso.client_secret}
    status, _, body = http_request("POST", f"{setup.sso.issuer}/oauth2/token", form=form, headers=headers)
    return status, body.decode()


@pytest.mark.parametrize("who_redeems", ["service", "back-channel"])
def test_a_surge_logs_everyone_in_through_lemonldap_s_oidc_provider_by_options_only(
    lemonldap_sso: SsoSetup, tmp_path: Path, who_redeems: str
) -> None:
    """The browser's flow (the ENT starts the login and redeems the code), and an app's (the client redeems it
    on the back channel and verifies the ID token); LemonLDAP's form fields are read from its login page."""
    setup = lemonldap_sso
    if who_redeems == "service":
        redeeming = ["--oidc-issuer", setup.sso.issuer, "--oidc-login-url", f"{setup.ent.base_url}/oidc/login"]
    else:
        redeeming = [
            "--oidc-validation",
            "back-channel",
            "--oidc-issuer",
            setup.sso.issuer,
            "--oidc-client-id",
            OIDC_CLIENT_ID,
            "--oidc-client-secret",
            setup.sso.client_secret,
            "--oidc-redirect-uri",
            setup.ent.redirect_uri,
        ]
    run_dir, output = surge(
        setup,
        ["--sso", "oidc", "--client", "schoolsurge.clients.oidc:OidcClient", "--home-url", f"{setup.ent.base_url}/"]
        + redeeming,
        tmp_path,
    )
    started = sessions_total(run_dir, "started")
    assert started == sessions_total(run_dir, "scheduled") > 20, output[-2000:]
    assert sessions_total(run_dir, "logins_succeeded") == started, output[-2000:]
    assert sessions_total(run_dir, "logins_failed") == 0
    # Every step it performs succeeds (its one page, the provider's logout); the ENT's other pages are not its own:
    # reported as not supported.
    stats = pd.read_csv(run_dir / "locust_stats.csv")
    assert int(stats[stats["Name"] != "Aggregated"]["Failure Count"].sum()) == 0, output[-2000:]
    home_pages, home_failures = request_counts(run_dir, "home")
    assert home_pages >= started and home_failures == 0
    assert_not_supported_reported(run_dir, {"homework", "timetable"})
