"""Schema fuzzing: schemathesis drives the live platform from its own OpenAPI schema, anonymous, as each role
and as the operator, with every check it has; and the OpenID Connect platform (`--sso oidc`), anonymous. No 500
anywhere (the platform's own count, after each run), every response as documented.

Bounded: a fixed seed; the quick suite draws 2 random examples per operation (the schema's own examples and the
coverage phase's boundary and negative cases are all sent whatever the count), `make test-long` the full 8.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Client, login

from schoolsurge.accounts import Roster
from schoolsurge.platform.process import PlatformProcess

SEED, SIZE, COST = 2021, 60, 4
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
COMMON = ["--seed", "1", "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful"]
COMMON += ["--no-shrink", "--request-timeout", "10", "--output-truncate", "true"]
# Random examples per operation: few in the quick suite, the full count in the long one.
EXAMPLES = [pytest.param(2, id="quick"), pytest.param(8, id="full", marks=pytest.mark.long)]
REACHED = 25  # requests a run reaches the platform with, at the least (the operator's few endpoints: about 50)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    """A platform of its own: fuzzing creates virtual classes, homework and sessions nobody else expects."""
    root = tmp_path_factory.mktemp("fuzzed")
    with PlatformProcess(
        seed=SEED, size=SIZE, hash_cost=COST, profile="resized", cache_dir=platform_cache, log_path=root / "log"
    ) as proc:
        yield proc


@pytest.fixture(scope="module")
def fuzzed_oidc(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    root = tmp_path_factory.mktemp("fuzzed-oidc")
    with PlatformProcess(
        seed=SEED,
        size=SIZE,
        hash_cost=COST,
        profile="resized",
        cache_dir=platform_cache,
        log_path=root / "log",
        sso="oidc",
    ) as proc:
        yield proc


def schemathesis(
    platform: PlatformProcess,
    workdir: Path,
    examples: int,
    *args: str,
    auth: dict[str, str] | None = None,
    disable: tuple[str, ...] = (),
) -> None:
    """Run schemathesis against the platform, then read the platform's own count of its answers: none was a 500,
    and the fuzzing reached it. `auth` maps the schema's security schemes to credentials, so it also checks what
    happens without them; `disable` names checks to turn off."""
    if shutil.which(str(SCHEMATHESIS)) is None:
        pytest.fail(f"{SCHEMATHESIS} not found; install schemathesis into the venv (see docs/platform.md)")
    url = platform.base_url
    before = _requests_answered(url)
    config = workdir / "schemathesis.toml"
    lines = []
    for scheme, value in (auth or {}).items():
        key = "bearer" if scheme == "HTTPBearer" else "api_key"
        lines += [f"[auth.openapi.{scheme}]", f'{key} = "{value}"']
    for check in disable:
        lines += [f"[checks.{check}]", "enabled = false"]
    config.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{url}/openapi.json",
            *COMMON,
            "--max-examples",
            str(examples),
            *args,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    scrape = Client(url).get("/metrics").text
    assert 'status="500"' not in scrape
    assert _requests(scrape) - before > REACHED, "the fuzzing did not reach the platform"


def _requests_answered(url: str) -> float:
    return _requests(Client(url).get("/metrics").text)


def _requests(scrape: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in scrape.splitlines()
        if line.startswith("schoolsurge_http_requests_total{")
    )


@pytest.mark.parametrize("examples", EXAMPLES)
@pytest.mark.parametrize("role", [None, "student", "teacher", "parent"])
def test_schema_fuzzing_finds_no_error(
    fuzzed: PlatformProcess, tmp_path: Path, role: str | None, examples: int
) -> None:
    url = fuzzed.base_url
    if role is None:
        schemathesis(fuzzed, tmp_path, examples)
        return
    client, _ = login(url, Roster(SEED, SIZE), role, 2)
    # Logging out would end the very session the run authenticates with; the operator's run is below.
    args = ["--exclude-path", "/cas/logout", "--exclude-path-regex", "^/admin/"]
    # Schemathesis adds the configured cookie to its "session missing" negative cases too, so that check
    # cannot hold here; the anonymous run covers rejection of bad data (validated before any session).
    cookie = client.cookies["ent_session"]
    schemathesis(fuzzed, tmp_path, examples, *args, auth={"APIKeyCookie": cookie}, disable=("negative_data_rejection",))


@pytest.mark.parametrize("examples", EXAMPLES)
def test_schema_fuzzing_as_the_operator(fuzzed: PlatformProcess, tmp_path: Path, examples: int) -> None:
    token = fuzzed.admin_token
    schemathesis(fuzzed, tmp_path, examples, "--include-path-regex", "^/admin/", auth={"HTTPBearer": token})


@pytest.mark.parametrize("examples", EXAMPLES)
def test_schema_fuzzing_the_openid_provider_finds_no_error(
    fuzzed_oidc: PlatformProcess, tmp_path: Path, examples: int
) -> None:
    schemathesis(fuzzed_oidc, tmp_path, examples, "--exclude-path-regex", "^/admin/")
