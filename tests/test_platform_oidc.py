"""The embedded OpenID Provider (`--sso oidc`) against OpenID Connect Core 1.0, Discovery 1.0, RFC 6749 and RFC
7636, over real HTTP (http.client, a new connection per request, so consecutive requests land on either of the
two worker processes): discovery and keys, the code flow with PKCE for a public and a confidential client, the ID
token checked by hand (signature by a key of the JWKS, iss, aud, nonce, exp), userinfo, every refusal (redirect
URI, client, PKCE, reused and expired codes), the ENT's own login through it, logout, and the protections CAS's
login has (forms bound to their browser, the slow-down on wrong passwords, the login-rate limit, the metrics)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.oidc.discovery import OpenIDProviderMetadata
from conftest import Client, Reply, metric_value
from joserfc import jwt
from joserfc.jwk import KeySet

from schoolsurge.accounts import Roster
from schoolsurge.platform.oidc_config import ENT_CLIENT_ID, MOBILE_CLIENT_ID, MOBILE_REDIRECT_URI
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.platform.settings import Settings

SEED, SIZE, COST = 2021, 60, 4
CODE_TTL = 2.0  # seconds: long enough to redeem a code at once, short enough to see one expire
ROSTER = Roster(SEED, SIZE)
ADDRESS_ALLOWED = Settings().throttle_failures  # wrong passwords for an account from one address before it waits


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    root = tmp_path_factory.mktemp("oidc")
    with PlatformProcess(
        seed=SEED,
        size=SIZE,
        hash_cost=COST,
        profile="resized",  # two workers: codes, keys and tokens must be shared
        cache_dir=platform_cache,
        log_path=root / "log",
        startup_timeout=60,
        sso="oidc",
        extra_args=["--code-ttl", str(CODE_TTL)],
    ) as proc:
        yield proc


# ---- helpers --------------------------------------------------------------------------------------------


class FormReader(HTMLParser):
    """The inputs of a page's forms: {name: value} of each form, with its action."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append((attributes.get("action", ""), {}))
        elif tag == "input" and self.forms:
            self.forms[-1][1][attributes["name"]] = attributes.get("value", "")


def login_form(reply: Reply) -> dict[str, str]:
    """The one login form of a page, posting to /oidc/login: its inputs."""
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/html")
    reader = FormReader()
    reader.feed(reply.text)
    assert len(reader.forms) == 1, reply.text
    action, inputs = reader.forms[0]
    assert action == "/oidc/login"
    return inputs


def pkce() -> tuple[str, str]:
    """(code_verifier, its S256 code_challenge), RFC 7636 section 4."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization(
    client_id: str = MOBILE_CLIENT_ID, redirect_uri: str = MOBILE_REDIRECT_URI, challenge: str = "", **more: str | None
) -> dict[str, str]:
    """An authorization request of the code flow with PKCE; `more` changes its parameters (None: leaves one out)."""
    request = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge or pkce()[1],
        "code_challenge_method": "S256",
    }
    return {name: value for name, value in {**request, **more}.items() if value is not None}


def authorize(client: Client, request: dict[str, str]) -> Reply:
    return client.get(f"/oidc/authorize?{urlencode(request)}", headers={"Accept": "text/html"})


def submit(client: Client, form: dict[str, str], username: str, password: str, **headers: str) -> Reply:
    return client.post("/oidc/login", form={**form, "username": username, "password": password}, headers=headers)


def redirect_query(reply: Reply, redirect_uri: str) -> dict[str, str]:
    """The query of a redirect to `redirect_uri` (the code, or an error), each parameter once."""
    assert reply.status == 302, reply.text
    location = reply.headers["Location"]
    assert location.startswith(redirect_uri + "?"), location
    query = parse_qs(urlsplit(location).query)
    assert all(len(values) == 1 for values in query.values()), location
    return {name: values[0] for name, values in query.items()}


def code_for(
    url: str, request: dict[str, str], role: str = "student", index: int = 1, client: Client | None = None
) -> str:
    """A person logs in for this authorization request: the code the provider sends back."""
    client = client or Client(url)
    username, password = ROSTER.credentials(role, index)
    query = redirect_query(
        submit(client, login_form(authorize(client, request)), username, password), request["redirect_uri"]
    )
    assert query["state"] == request["state"]
    return query["code"]


def redeem(
    url: str,
    code: str,
    verifier: str,
    client_id: str = MOBILE_CLIENT_ID,
    redirect_uri: str = MOBILE_REDIRECT_URI,
    secret: str | None = None,
    auth: str = "none",
) -> Reply:
    """POST /oidc/token, the client authenticated by `auth` (client_secret_basic, client_secret_post, none)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    headers = {}
    if auth == "client_secret_basic":
        headers["Authorization"] = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    else:
        form["client_id"] = client_id
        if auth == "client_secret_post":
            form["client_secret"] = secret or ""
    return Client(url).post("/oidc/token", form=form, headers=headers)


def oauth_error(reply: Reply) -> str:
    assert reply.headers["Content-Type"] == "application/json", reply.headers["Content-Type"]
    assert reply.headers["Cache-Control"] == "no-store"
    return str(reply.json()["error"])


def ent_redirect(url: str) -> str:
    return f"{url}/ent/auth/oidc/callback"


# ---- discovery and keys ---------------------------------------------------------------------------------


def test_the_metadata_follow_discovery_and_name_this_issuer(provider: PlatformProcess) -> None:
    url = provider.base_url
    reply = Client(url).get("/oidc/.well-known/openid-configuration")
    assert reply.status == 200
    metadata = reply.json()
    OpenIDProviderMetadata(metadata).validate()  # every REQUIRED member, of the right shape (authlib)
    assert metadata["issuer"] == f"{url}/oidc"  # Discovery 4.3: the URL the metadata were asked at
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert metadata[endpoint].startswith(f"{url}/oidc/"), endpoint
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = Client(url).get("/oidc/jwks").json()["keys"]
    assert [(key["kty"], key["alg"], key["use"]) for key in keys] == [("RSA", "RS256", "sig")]
    assert "d" not in keys[0] and "p" not in keys[0], "never the private parts"


# ---- the code flow --------------------------------------------------------------------------------------


def verified_claims(url: str, id_token: str, client_id: str, nonce: str) -> dict[str, Any]:
    """The ID token checked by hand: signature by a key of the JWKS fetched now, iss, aud, nonce, exp."""
    keys = KeySet.import_key_set(Client(url).get("/oidc/jwks").json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])  # raises on a bad signature
    assert token.header["alg"] == "RS256" and token.header["kid"] == keys.keys[0].kid
    claims = token.claims
    assert claims["iss"] == f"{url}/oidc"
    assert claims["aud"] == client_id
    assert claims["nonce"] == nonce
    assert claims["iat"] <= time.time() + 5 < claims["exp"]
    return claims


def test_a_public_client_logs_in_by_the_code_flow_with_pkce(provider: PlatformProcess) -> None:
    url = provider.base_url
    verifier, challenge = pkce()
    request = authorization(challenge=challenge)
    code = code_for(url, request, "teacher", 0)
    reply = redeem(url, code, verifier)
    assert reply.status == 200, reply.text
    assert reply.headers["Cache-Control"] == "no-store"
    tokens = reply.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0 and tokens["scope"] == "openid profile"
    claims = verified_claims(url, tokens["id_token"], MOBILE_CLIENT_ID, request["nonce"])
    username = ROSTER.credentials("teacher", 0)[0]
    assert claims["sub"] == username and claims["preferred_username"] == username
    info = Client(url).get("/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status == 200 and info.json()["sub"] == username and info.json()["name"]
    assert Client(url).get("/oidc/userinfo").status == 401
    unknown = Client(url).get("/oidc/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert unknown.status == 401 and "invalid_token" in unknown.headers["WWW-Authenticate"]


@pytest.mark.parametrize("auth", ["client_secret_basic", "client_secret_post"])
def test_the_ents_confidential_client_authenticates_at_the_token_endpoint(provider: PlatformProcess, auth: str) -> None:
    url, secret = provider.base_url, provider.oidc_client_secret
    verifier, challenge = pkce()
    request = authorization(ENT_CLIENT_ID, ent_redirect(url), challenge)
    code = code_for(url, request)
    wrong = redeem(url, code, verifier, ENT_CLIENT_ID, ent_redirect(url), "wrong-secret", auth)
    assert wrong.status in (400, 401) and oauth_error(wrong) == "invalid_client"
    reply = redeem(url, code, verifier, ENT_CLIENT_ID, ent_redirect(url), secret, auth)
    assert reply.status == 200, reply.text  # a client that failed to authenticate did not use the code up
    verified_claims(url, reply.json()["id_token"], ENT_CLIENT_ID, request["nonce"])
    public = redeem(url, code_for(url, authorization(ENT_CLIENT_ID, ent_redirect(url))), verifier, ENT_CLIENT_ID)
    assert oauth_error(public) == "invalid_client", "a confidential client must authenticate"


# ---- refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_fields",
    [
        {"redirect_uri": "http://evil.example/callback"},  # not registered for this client
        {"redirect_uri": MOBILE_REDIRECT_URI + "/more"},  # exact comparison, no prefixes
        {"client_id": "nobody"},
        {"client_id": ENT_CLIENT_ID},  # the app's redirect URI is not the ENT's
    ],
)
def test_nothing_goes_to_an_unregistered_client_or_redirect_uri(
    provider: PlatformProcess, request_fields: dict[str, str]
) -> None:
    client = Client(provider.base_url)
    for reply in (
        authorize(client, authorization(**request_fields)),
        client.post("/oidc/authorize", form=authorization(**request_fields)),
        submit(client, {**authorization(**request_fields), "execution": "x"}, "eleve.0000001", "x"),
    ):
        assert reply.status == 403, reply.text
        assert "Location" not in reply.headers


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),  # PKCE is required
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),  # S256 only
        ({"code_challenge_method": None}, "invalid_request"),  # which defaults to plain
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),  # an OpenID Provider: openid is required
        ({"prompt": "none"}, "login_required"),  # nobody has a single sign-on session here
    ],
)
def test_a_bad_authorization_request_goes_back_to_the_client_with_an_error(
    provider: PlatformProcess, changes: dict[str, str | None], error: str
) -> None:
    request = authorization(**changes)
    query = redirect_query(authorize(Client(provider.base_url), request), MOBILE_REDIRECT_URI)
    assert query["error"] == error and query["state"] == request["state"] and "code" not in query


def test_a_code_is_refused_without_its_verifier_client_or_redirect_uri_and_then_used_up(
    provider: PlatformProcess,
) -> None:
    url = provider.base_url
    verifier, challenge = pkce()

    def fresh() -> str:
        return code_for(url, authorization(challenge=challenge))

    assert oauth_error(redeem(url, fresh(), "")) == "invalid_request"  # no verifier
    assert oauth_error(redeem(url, fresh(), pkce()[0])) == "invalid_grant"  # another verifier
    assert oauth_error(redeem(url, fresh(), verifier, redirect_uri=MOBILE_REDIRECT_URI + "/x")) == "invalid_grant"
    assert oauth_error(redeem(url, "no-such-code", verifier)) == "invalid_grant"
    assert oauth_error(redeem(url, fresh(), verifier, client_id="nobody")) == "invalid_client"
    # Refused once, for whatever reason once the client is known: the code is used up.
    code = fresh()
    assert oauth_error(redeem(url, code, pkce()[0])) == "invalid_grant"
    assert oauth_error(redeem(url, code, verifier)) == "invalid_grant"
    # Issued to the ENT: useless to the app, even with the right verifier.
    ent_code = code_for(url, authorization(ENT_CLIENT_ID, ent_redirect(url), challenge))
    assert oauth_error(redeem(url, ent_code, verifier, redirect_uri=ent_redirect(url))) == "invalid_grant"


def test_a_code_used_twice_is_refused_and_revokes_the_tokens_it_gave(provider: PlatformProcess) -> None:
    url = provider.base_url
    verifier, challenge = pkce()
    code = code_for(url, authorization(challenge=challenge))
    first = redeem(url, code, verifier)
    assert first.status == 200
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert Client(url).get("/oidc/userinfo", headers=bearer).status == 200
    assert oauth_error(redeem(url, code, verifier)) == "invalid_grant"
    assert Client(url).get("/oidc/userinfo", headers=bearer).status == 401  # RFC 6749 section 4.1.2


def test_an_expired_code_is_refused(provider: PlatformProcess) -> None:
    url = provider.base_url
    verifier, challenge = pkce()
    code = code_for(url, authorization(challenge=challenge))
    time.sleep(CODE_TTL + 0.2)  # the code's lifetime passing is what is tested
    assert oauth_error(redeem(url, code, verifier)) == "invalid_grant"


# ---- the same protections as CAS's login ----------------------------------------------------------------


def test_a_login_form_works_only_in_the_browser_it_was_given_to(provider: PlatformProcess) -> None:
    url = provider.base_url
    request = authorization()
    victim, attacker = Client(url), Client(url)
    form = login_form(authorize(attacker, request))  # the attacker's form, posted from the victim's browser
    username, password = ROSTER.credentials("student", 3)
    login_form(authorize(victim, authorization()))  # the victim has a login-flow cookie of their own
    for browser in (victim, Client(url)):  # with another cookie, or none
        refused = submit(browser, form, username, password)
        assert refused.status == 401 and refused.json()["detail"].startswith("login form unknown"), refused.text
    assert submit(attacker, form, username, password).status == 401, "used up by the refused attempts"
    page = submit(victim, form, username, password, Accept="text/html")
    assert (
        page.status == 401
        and "opened in another browser" in page.text
        and "oidc_login_flow" in page.headers["Set-Cookie"]
    )


def test_login_pages_are_never_framed_nor_cached_and_cookies_are_scoped(provider: PlatformProcess) -> None:
    client = Client(provider.base_url)
    page = authorize(client, authorization())
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    cookie = page.headers["Set-Cookie"].lower()
    assert cookie.startswith("oidc_login_flow=") and "path=/oidc" in cookie and "httponly" in cookie
    assert "samesite=lax" in cookie


def test_wrong_passwords_slow_the_account_down_as_for_cas(provider: PlatformProcess) -> None:
    url = provider.base_url
    client = Client(url)
    username, password = ROSTER.credentials("parent", 4)
    hashed_before = metric_value(client.get("/metrics").text, "schoolsurge_password_hash_seconds_count")
    for _ in range(ADDRESS_ALLOWED):
        wrong = submit(client, login_form(authorize(client, authorization())), username, "guess", Accept="text/html")
        assert wrong.status == 401 and "invalid username or password" in wrong.text
    slowed = submit(client, login_form(authorize(client, authorization())), username, password)
    assert slowed.status == 429 and int(slowed.headers["Retry-After"]) >= 1, slowed.text
    scrape = client.get("/metrics").text
    hashed = metric_value(scrape, "schoolsurge_password_hash_seconds_count") - hashed_before
    assert hashed == ADDRESS_ALLOWED, "the slowed-down attempt was not hashed"
    assert metric_value(scrape, "schoolsurge_logins_total", 'outcome="throttled"') >= 1
    assert metric_value(scrape, "schoolsurge_logins_total", 'outcome="failure"') >= ADDRESS_ALLOWED


def test_oidc_credentials_take_a_login_token_of_the_profile(tmp_path: Path, platform_cache: Path) -> None:
    """A credential submission at /oidc/login is a login for the profile's login-rate limit, as at /cas/login:
    with a bucket of 10 tokens refilled at 0.001 a second and no wait, the eleventh is refused at once."""
    args = ["--sso", "oidc", "--national-login-rate", "0.001", "--login-timeout", "0"]
    with PlatformProcess(
        seed=SEED, size=SIZE, hash_cost=COST, cache_dir=platform_cache, log_path=tmp_path / "log", extra_args=args
    ) as proc:
        client = Client(proc.base_url)
        replies = [submit(client, {**authorization(), "execution": "x"}, "eleve.0000001", "x") for _ in range(11)]
        assert [reply.status for reply in replies[:10]] == [401] * 10  # let through: a stale form
        assert replies[10].status == 503 and "login capacity reached" in replies[10].json()["detail"]
        assert authorize(client, authorization()).status == 200, "the form is still served"
        scrape = client.get("/metrics").text
        assert metric_value(scrape, "schoolsurge_requests_shed_total", 'reason="login_rate"') == 1
        route = 'route="/oidc/login",status="503"'
        assert metric_value(scrape, "schoolsurge_http_requests_total", route) == 1


# ---- the ENT, a relying party of the provider -----------------------------------------------------------


def ent_login(url: str, role: str = "student", index: int = 5) -> tuple[Client, Reply]:
    """A browser logs in to the ENT: its login URL, the provider's form, the credentials, the callback."""
    browser = Client(url)
    start = browser.get("/ent/auth/oidc/login")
    assert start.status == 302 and start.headers["Location"].startswith("/oidc/authorize?")
    assert "ent_oidc_login" in browser.cookies
    form = login_form(browser.get(start.headers["Location"]))
    assert form["client_id"] == ENT_CLIENT_ID and form["code_challenge_method"] == "S256" and form["nonce"]
    username, password = ROSTER.credentials(role, index)
    query = redirect_query(submit(browser, form, username, password), ent_redirect(url))
    return browser, browser.get(f"/ent/auth/oidc/callback?{urlencode(query)}")


def test_the_ent_logs_people_in_through_the_provider(provider: PlatformProcess) -> None:
    url = provider.base_url
    browser, callback = ent_login(url)
    assert callback.status == 200, callback.text
    assert callback.json()["username"] == ROSTER.credentials("student", 5)[0]
    assert browser.get("/api/dashboard").status == 200
    # Logging out at the provider ends the ENT session.
    assert browser.get("/oidc/logout").status == 200
    assert browser.get("/api/dashboard").status == 401


def test_the_ent_refuses_a_state_or_a_code_not_its_own(provider: PlatformProcess) -> None:
    url = provider.base_url
    browser = Client(url)
    start = browser.get("/ent/auth/oidc/login")
    form = login_form(browser.get(start.headers["Location"]))
    username, password = ROSTER.credentials("student", 6)
    query = redirect_query(submit(browser, form, username, password), ent_redirect(url))
    callback = f"/ent/auth/oidc/callback?{urlencode(query)}"
    # Another browser landing with this code and state (login CSRF): refused, and the state is used up.
    assert Client(url).get(callback).status == 401
    assert browser.get(callback).status == 401
    assert "ent_session" not in browser.cookies
    # A code of another client, brought with a state of the ENT's: refused.
    start = browser.get("/ent/auth/oidc/login")
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    foreign = code_for(url, authorization(), client=Client(url))
    assert browser.get(f"/ent/auth/oidc/callback?{urlencode({'code': foreign, 'state': state})}").status == 401
    # An error from the provider.
    refused = browser.get("/ent/auth/oidc/callback?error=access_denied&state=x")
    assert refused.status == 401 and "access_denied" in refused.json()["detail"]


def test_logout_with_an_id_token_hint_not_its_own_logs_out_and_never_redirects(provider: PlatformProcess) -> None:
    url = provider.base_url
    browser, callback = ent_login(url, "parent", 7)
    assert callback.status == 200
    forged = re.sub(r"\.[^.]+$", ".c2lnbmF0dXJl", code_for_id_token(url))  # its signature replaced
    reply = browser.get(f"/oidc/logout?{urlencode({'id_token_hint': forged, 'post_logout_redirect_uri': url})}")
    assert reply.status == 200 and "Location" not in reply.headers
    assert browser.get("/api/dashboard").status == 401


def code_for_id_token(url: str) -> str:
    verifier, challenge = pkce()
    return str(redeem(url, code_for(url, authorization(challenge=challenge)), verifier).json()["id_token"])
