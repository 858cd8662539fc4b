"""The OpenID Connect client: real surges (smoke's first half hour) through `schoolsurge run --sso oidc` (the
reference client's OIDC login, and OidcClient configured by options only on the back channel), OidcClient against
the embedded provider as a confidential client (client_secret_basic, client_secret_post), the login form read as
a browser would, and clients of the wrong protocol refused by name."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import SHORT_SESSION_MINUTES, assert_measured_the_platform, run_measuring_the_platform, smoke_half_hour
from locust.env import Environment

from schoolsurge.accounts import Roster
from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.clients import ClientContext, ClientSettings, OidcClient, ReferenceOidcClient, StepFailed
from schoolsurge.clients.login_form import parse_login_form
from schoolsurge.clients.options import load_client_class
from schoolsurge.engine.http import GuardedOpener
from schoolsurge.errors import ClientError
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.runner import RunOutcome, RunRequest

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
FAST = 240
SEED, SIZE, COST = 2021, 60, 4


def _stats(outcome: RunOutcome) -> pd.DataFrame:
    return pd.read_csv(outcome.run_dir / "locust_stats.csv")


def _count(stats: pd.DataFrame, name: str, column: str = "Request Count") -> int:
    return int(stats[stats["Name"] == name][column].sum())


def _sessions_total(outcome: RunOutcome, column: str) -> int:
    return int(pd.read_csv(outcome.run_dir / "sessions.csv")[column].sum())


def _failures(stats: pd.DataFrame) -> int:
    return int(stats[stats["Name"] != "Aggregated"]["Failure Count"].sum())


# ---- real runs ------------------------------------------------------------------------------------------


def test_a_smoke_run_with_sso_oidc_lives_the_whole_journey_through_oidc_logins(tmp_path: Path) -> None:
    # Smoke's first half hour, its sessions short, at twice the scenario's speed: a pupil who finds the lesson over
    # is no failure (410).
    request = RunRequest(
        scenario_path=smoke_half_hour(tmp_path, session_minutes=SHORT_SESSION_MINUTES),
        target=None,
        speed=FAST,
        reports_dir=tmp_path / "reports",
        client_arguments=["--sso", "oidc"],
    )
    outcome = run_measuring_the_platform(request)
    assert_measured_the_platform(outcome.run_dir)
    stats = _stats(outcome)
    people = _sessions_total(outcome, "scheduled")
    logins = _count(stats, "sso: code callback")
    assert logins >= people > 20  # everyone logged in through the ENT's OIDC callback (some twice: sessions end)
    assert _count(stats, "sso: submit credentials") == logins
    assert _count(stats, "sso: ticket callback") == _count(stats, "sso: validate ticket") == 0, "no CAS at all"
    for page in ("dashboard", "homework", "virtual class: join", "virtual class: heartbeat"):
        assert _count(stats, page) > 0, page
    assert _failures(stats) == 0
    assert _sessions_total(outcome, "logins_succeeded") == logins
    assert outcome.slo_met and outcome.served is not None and outcome.served.share == 1.0
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    assert manifest["sso"] == "oidc" and manifest["client"].endswith(":ReferenceOidcClient")
    assert "OpenID Connect" in (outcome.run_dir / "report.html").read_text()


def test_the_oidc_client_logs_in_on_the_back_channel_by_options_only(tmp_path: Path) -> None:
    arguments = ["--sso", "oidc", "--client", "schoolsurge.clients.oidc:OidcClient"]
    outcome = run_measuring_the_platform(
        RunRequest(
            scenario_path=smoke_half_hour(tmp_path, session_minutes=SHORT_SESSION_MINUTES),
            target=None,
            speed=FAST,
            reports_dir=tmp_path / "reports",
            client_arguments=[*arguments, "--oidc-validation", "back-channel"],
        )
    )
    assert_measured_the_platform(outcome.run_dir)
    stats = _stats(outcome)
    people = _sessions_total(outcome, "scheduled")
    assert _count(stats, "sso: redeem code") == people > 20  # the token endpoint, once per person
    assert _count(stats, "sso: code callback") == 0, "the ENT never saw the codes"
    assert _count(stats, "sso: discovery") == 1 and _count(stats, "sso: jwks") == 1, "read once per process"
    assert _count(stats, "home") >= people  # userinfo, with each person's access token
    assert _failures(stats) == 0
    assert _sessions_total(outcome, "logins_succeeded") == people
    assert outcome.slo_met


# ---- OidcClient against the embedded provider, in process -------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    root = tmp_path_factory.mktemp("oidc-client")
    with PlatformProcess(
        seed=SEED, size=SIZE, hash_cost=COST, cache_dir=platform_cache, log_path=root / "log", sso="oidc"
    ) as proc:
        yield proc


def client_of(url: str, settings: ClientSettings, client_class: type[OidcClient] = OidcClient) -> OidcClient:
    environment = Environment(host=url)
    opener = GuardedOpener(None)
    return client_class(
        ClientContext(
            http=opener.new_connection(environment),
            settings=settings,
            open_connection=lambda: opener.new_connection(environment),
        )
    )


@pytest.mark.parametrize("token_auth", ["client_secret_basic", "client_secret_post"])
def test_the_oidc_client_redeems_its_code_as_a_confidential_client(provider: PlatformProcess, token_auth: str) -> None:
    url = provider.base_url
    settings = ClientSettings(
        oidc_client_id="ent",
        oidc_client_secret=provider.oidc_client_secret,
        oidc_redirect_uri=f"{url}/ent/auth/oidc/callback",
        oidc_token_auth=token_auth,
        oidc_validation="back-channel",
    )
    client = client_of(url, settings)
    username, password = Roster(SEED, SIZE).credentials("teacher", 1)
    client.login(username, password)
    assert client.tokens["token_type"] == "Bearer" and client.tokens["id_token"]
    client.dashboard()  # userinfo, with the access token
    # A page of the platform given by --home-url (here the provider's userinfo, which takes only a bearer) is
    # asked with the access token too: an app has no session cookie of the service's.
    userinfo = str(client.provider().metadata["userinfo_endpoint"])
    with pytest.raises(StepFailed, match="home page unavailable"):
        client_of(url, dataclasses.replace(settings, home_url=userinfo)).dashboard()  # no token yet: refused
    with_home = client_of(url, dataclasses.replace(settings, home_url=userinfo))
    with_home.login(username, password)
    with_home.dashboard()
    client.logout()  # the end_session_endpoint, with the ID token as hint
    wrong = client_of(url, dataclasses.replace(settings, oidc_client_secret="not-the-secret"))
    with pytest.raises(StepFailed, match=r"^login: ticket validation failed \(HTTP 401, no ID token: invalid_client\)"):
        wrong.login(username, password)


def test_the_oidc_client_fails_the_step_on_wrong_credentials_or_an_unregistered_redirect_uri(
    provider: PlatformProcess,
) -> None:
    url = provider.base_url
    username, password = Roster(SEED, SIZE).credentials("student", 2)
    with pytest.raises(StepFailed, match=r"^login: credentials refused \(HTTP 401\)"):
        client_of(url, ClientSettings(sso="oidc"), ReferenceOidcClient).login(username, "wrong")
    elsewhere = ClientSettings(oidc_validation="back-channel", oidc_redirect_uri="http://127.0.0.1:9/cb")
    with pytest.raises(StepFailed, match=r"^login: form not found \(HTTP 403\)"):  # the provider refuses
        client_of(url, elsewhere).login(username, password)
    reference = client_of(url, ClientSettings(sso="oidc"), ReferenceOidcClient)
    reference.login(username, password)
    assert reference.dashboard().role == "student"


# ---- the login form, read as a browser would ------------------------------------------------------------


def test_the_login_forms_field_names_are_read_from_the_form() -> None:
    page = """<form action="/search"><input name="q"></form>
    <form method="post" action="/portal/"><input type="hidden" name="url" value="aHR0cA==">
    <input type="hidden" name="token" value="1&amp;2"><label>Login <input type="text" name="user"></label>
    <label>Password <input type="password" name="password"></label><input type="checkbox" name="stayconnected">
    </form>"""
    form = parse_login_form(page, "http://127.0.0.1:8080/oauth2/authorize?x=1")
    assert form is not None
    assert form.action == "http://127.0.0.1:8080/portal/"
    assert form.hidden == {"url": "aHR0cA==", "token": "1&2"}
    assert (form.username_field, form.password_field) == ("user", "password")
    email_after = '<form><input type="password" name="pw"><input type="email" name="mail"></form>'
    form = parse_login_form(email_after, "http://127.0.0.1/login")
    assert form is not None and (form.action, form.username_field, form.password_field) == (
        "http://127.0.0.1/login",
        "mail",
        "pw",
    )
    assert parse_login_form("<form><input name='q'></form>", "http://127.0.0.1/") is None


# ---- the protocol picks the client ----------------------------------------------------------------------


def test_the_default_client_speaks_the_runs_protocol_and_another_is_refused() -> None:
    assert load_client_class(None, "oidc") is ReferenceOidcClient
    assert load_client_class(None).__name__ == "ReferencePlatformClient"
    with pytest.raises(ClientError, match="logs in by cas, not by --sso oidc"):
        load_client_class("schoolsurge.clients.reference:ReferencePlatformClient", "oidc")
    with pytest.raises(ClientError, match="logs in by oidc, not by --sso cas"):
        load_client_class("schoolsurge.clients.oidc:OidcClient", "cas")


def test_run_refuses_a_client_of_another_protocol_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--sso", "oidc", "--client", "schoolsurge.clients.cas:CasClient", "--reports-dir", str(tmp_path)]
    assert main(["run", str(SMOKE), *arguments]) == EXIT_USAGE
    assert "CasClient logs in by cas, not by --sso oidc" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
