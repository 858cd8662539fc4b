"""Journey maps: WebClient walks a platform from a YAML file. The embedded platform's map gives the default
client's run; a map is validated whole before a run starts (exit 2, one line naming the file, the step and the
field); steps a map leaves out are skipped and counted; templates take the person's values, the step's
arguments and values read earlier, and nothing else. LemonLDAP::NG through the shipped cas-ent map:
tests/test_lemonldap.py.
"""

from __future__ import annotations

import http.server
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import SMOKE_SPEED, assert_measured_the_platform, run_measuring_the_platform
from locust.env import Environment

from schoolsurge.accounts import Roster
from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.clients import ClientContext, ClientSettings, Person, ReferencePlatformClient, StepNotSupported
from schoolsurge.clients.journey import STEPS, Template, load_journey_map, parse_journey_map, shipped_maps
from schoolsurge.clients.options import load_client_class
from schoolsurge.clients.web import WebClient
from schoolsurge.engine.http import GuardedOpener
from schoolsurge.errors import ClientError
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.runner import RunRequest
from schoolsurge.spec import check_client_arguments

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
WEB_CLIENT = "schoolsurge.clients.web:WebClient"
SEED, SIZE, COST = 2021, 60, 4


# ---- a map is checked whole, before anything starts ---------------------------------------------------------


def write_map(directory: Path, steps: dict[str, Any], name: str = "ent.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump({"steps": steps}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ({"homwork": {"url": "/h"}}, "steps.homwork: not a step; steps are: dashboard, timetable, homework"),
        ({"homework": {"url": "/h", "metod": "GET"}}, "steps.homework.metod: unknown field"),
        ({"homework": {"url": "/h", "method": "FETCH"}}, "steps.homework.method: Input should be 'GET'"),
        ({"homework": {"url": "/h", "expect": 99}}, "steps.homework.expect: 99 is not an HTTP status"),
        (
            {"homework": {"url": "/h", "read": {"homework": {"json": "$.[["}}}},
            "steps.homework.read.homework.json: '$.[[' is not a JSONPath",
        ),
        (
            {"homework": {"url": "/h", "read": {"x": {"regex": "(unclosed"}}}},
            "steps.homework.read.x.regex: '(unclosed' is not a regular expression",
        ),
        (
            {"homework": {"url": "/h", "read": {"x": {}}}},
            "steps.homework.read.x: give one of json (a JSONPath) or regex",
        ),
        (
            {"homework": {"url": "/classes/{clas_id}/homework"}},
            "steps.homework.url: {clas_id} is no value of this step (its arguments: child_id;",
        ),
        ({"homework": {"url": "/h/{child_id.__class__}"}}, "steps.homework.url: '/h/{child_id.__class__}': "),
        ({"schedule_virtual_class": {"url": "/vc", "method": "POST"}}, "steps.schedule_virtual_class.read: read `id`"),
        (
            {"heartbeat": {"url": "/hb/{virtual_class_id}", "accept": {410: {"state": "closed"}}}},
            "steps.heartbeat.accept.410.state: not a result of heartbeat: status",
        ),
        (
            {"dashboard": {"url": "/", "read": {"open_virtual_classes": {"regex": r"id=(?P<id>\d+)"}}}},
            "steps.dashboard.read.open_virtual_classes.regex: name the groups of the record's fields: (?P<class_id>",
        ),
        ({"homework": {"url": "/h", "json": {}, "form": {}}}, "steps.homework: give one body: json or form"),
        ({"homework": []}, "steps.homework: no request; leave the step out instead"),
    ],
)
def test_a_wrong_map_is_refused_naming_the_file_the_step_and_the_field(
    tmp_path: Path, steps: dict[str, Any], expected: str
) -> None:
    path = write_map(tmp_path, steps)
    with pytest.raises(ClientError) as refused:
        load_journey_map(str(path))
    message = str(refused.value)
    assert message.startswith(f"{path}: {expected}"), message
    assert "\n" not in message


def test_a_map_that_is_not_a_map_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="cannot read journey map .*; give a file or one of: cas-ent, embedded"):
        load_journey_map(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: {dashboard: [", encoding="utf-8")
    with pytest.raises(ClientError, match=r"broken.yaml: not valid YAML at line \d+; fix the syntax"):
        load_journey_map(str(broken))
    with pytest.raises(ClientError, match="expected a mapping with `steps` at the top level"):
        parse_journey_map(["dashboard"], "list.yaml")


def test_run_refuses_a_wrong_map_before_anything_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_map(tmp_path, {"timetable": {"url": "/t", "expect": "often"}})
    reports = tmp_path / "reports"
    code = main(["run", str(SMOKE), "--client", WEB_CLIENT, "--journey-map", str(path), "--reports-dir", str(reports)])
    assert code == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert f"{path}: steps.timetable.expect" in error and len(error.splitlines()) == 1, error
    assert not reports.exists() or not any(reports.iterdir())


def test_the_web_client_declares_no_client_option_so_any_is_refused() -> None:
    with pytest.raises(ClientError, match="--client-option tenant: not an option of WebClient"):
        check_client_arguments(["--client", WEB_CLIENT, "--client-option", "tenant=a"])


def test_the_shipped_maps_are_valid_and_name_only_steps_of_the_contract() -> None:
    assert set(shipped_maps()) == {"embedded", "cas-ent"}
    for name in shipped_maps():
        journey = load_journey_map(name)
        assert set(journey.steps) <= set(STEPS)
    # The embedded map carries every step the default client writes but logging in and out.
    assert set(load_journey_map("embedded").steps) == set(STEPS) - {"logout"}
    assert check_client_arguments(["--client", WEB_CLIENT, "--journey-map", "cas-ent", "--sso", "oidc"]) == "oidc"
    assert load_client_class(WEB_CLIENT, "oidc") is WebClient  # either protocol: the run's --sso logs in


# ---- templates ----------------------------------------------------------------------------------------------


def test_templates_look_names_up_and_evaluate_nothing() -> None:
    text = Template("/users/{username}/classes/{class_id}{{x}}")
    assert text.names == {"username", "class_id"}
    assert text.render({"username": "a b/c", "class_id": 3}, lambda value: value.replace(" ", "+")) == (
        "/users/a+b/c/classes/3{x}"
    )
    assert text.render({"username": "x"}) is None  # an absent value: the entry is left out, or the step fails
    for wrong in ("{x.__class__}", "{x[0]}", "{x!r}", "{x:>10}", "{0}", "{", "}"):
        with pytest.raises(ValueError):
            Template(wrong)


# ---- WebClient on a real platform ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("journey")
    with PlatformProcess(seed=SEED, size=SIZE, hash_cost=COST, cache_dir=platform_cache, log_path=root / "log") as proc:
        yield proc.base_url


def client_of(url: str, client_class: type[Any], role: str, settings: ClientSettings | None = None) -> Any:
    environment = Environment(host=url)
    opener = GuardedOpener(None)
    return client_class(
        ClientContext(
            http=opener.new_connection(environment),
            settings=settings or ClientSettings(),
            person=Person(role, "group", 0),
            open_connection=lambda: opener.new_connection(environment),
        )
    )


def test_the_embedded_map_reads_what_the_default_client_reads(platform: str) -> None:
    roster = Roster(SEED, SIZE)
    teacher = client_of(platform, ReferencePlatformClient, "teacher")
    teacher.login(*roster.credentials("teacher", 1))
    class_id = teacher.dashboard().class_ids[0]
    virtual_class = teacher.schedule_virtual_class(class_id, "Cours du matin")
    compared, pupil_of_the_class = 0, None
    for role, index in [("student", i) for i in range(1, 40)] + [("parent", 1), ("parent", 2), ("teacher", 2)]:
        credentials = roster.credentials(role, index)
        reference, web = client_of(platform, ReferencePlatformClient, role), client_of(platform, WebClient, role)
        reference.login(*credentials)
        web.login(*credentials)
        dashboard = web.dashboard()
        assert dashboard == reference.dashboard()
        if role == "student" and class_id not in dashboard.class_ids:
            continue
        compared += 1
        child = dashboard.child_ids[0] if dashboard.child_ids else None
        assert web.homework(child) == reference.homework(child)
        web.timetable(child)
        assert web.messages() == reference.messages()
        if role == "student":
            pupil_of_the_class = credentials
            assert dashboard.waiting_virtual_classes == {class_id: virtual_class}
            assert web.join_virtual_class(virtual_class) == "waiting"
            assert web.heartbeat(virtual_class) == "scheduled"
        if role == "parent":
            assert web.children() == reference.children() == dashboard.child_ids
            web.switch_child(dashboard.child_ids[-1])
        web.logout()
    assert compared >= 5
    web_teacher = client_of(platform, WebClient, "teacher")
    web_teacher.login(*roster.credentials("teacher", 1))
    assert web_teacher.classes() == teacher.classes()
    assert web_teacher.participants(virtual_class) == teacher.participants(virtual_class) > 0  # pupils waiting
    web_teacher.open_virtual_class(virtual_class)
    assert web_teacher.heartbeat(virtual_class) == "open"
    web_teacher.leave_virtual_class(virtual_class)  # the teacher leaving ends the lesson
    assert web_teacher.heartbeat(virtual_class) == "closed"  # 410, accepted by the map as the end
    # A pupil whose join comes after the teacher ended the lesson (a race a busy platform widens) finds it over:
    # no failure, with both clients.
    assert pupil_of_the_class is not None
    for kind in (ReferencePlatformClient, WebClient):
        late_pupil = client_of(platform, kind, "student")
        late_pupil.login(*pupil_of_the_class)
        assert late_pupil.join_virtual_class(virtual_class) == "closed"
    new_homework = web_teacher.post_homework(class_id, "Anglais", "2021-04-08", "Exercices p. 42")
    assert new_homework > 0


def test_steps_the_map_leaves_out_are_not_supported(platform: str, tmp_path: Path) -> None:
    path = write_map(tmp_path, {"dashboard": {"url": "/api/dashboard", "read": {"role": {"json": "$.role"}}}})
    web = client_of(platform, WebClient, "student", ClientSettings(journey_map=str(path)))
    web.login(*Roster(SEED, SIZE).credentials("student", 1))
    assert web.dashboard().role == "student"
    for step in ("homework", "timetable", "messages"):
        with pytest.raises(StepNotSupported, match=f"^{step}$"):
            getattr(web, step)()
    with pytest.raises(StepNotSupported, match="^virtual class: join$"):
        web.join_virtual_class(1)
    web.logout()  # no logout step: the single sign-on's


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with JSON naming what it got: path, query, a header, body."""

    seen: list[dict[str, Any]] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "token": self.headers.get("X-Token"),
                "authorization": self.headers.get("Authorization"),
                "body": body,
            }
        )
        reply = json.dumps({"token": "T-1", "link": "/read/here?x=1", "id": 7}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's names

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's signature
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_values_read_earlier_in_the_session_fill_later_templates(recorder: str, tmp_path: Path) -> None:
    path = write_map(
        tmp_path,
        {
            "dashboard": {
                "url": "/home/{username}",
                "read": {"token": {"json": "$.token"}, "link": {"json": "$.link"}},
            },
            "homework": [
                {"url": "{link}", "headers": {"X-Token": "{token}"}, "query": {"child": "{child_id}"}},
                {"url": "/homework", "query": {"child": "{child_id}", "group": "{group}"}},
            ],
            "post_homework": {
                "method": "POST",
                "url": "/classes/{class_id}/homework",
                "json": {"class": "{class_id}", "subject": "{subject}", "for": "{role} {index}"},
                "read": {"id": {"json": "$.id"}},
            },
        },
    )
    web = client_of(recorder, WebClient, "teacher", ClientSettings(journey_map=str(path)))
    web.values["username"] = "prof 1/a"  # as login() sets it (no SSO here)
    web.dashboard()
    web.homework()
    assert web.post_homework(5, "Maths", "2021-04-08", "x") == 7
    assert [(seen["method"], seen["path"], seen["token"]) for seen in _Recorder.seen] == [
        ("GET", "/home/prof%201%2Fa", None),  # a value inside a URL is percent-encoded
        ("GET", "/read/here?x=1", "T-1"),  # a URL that is one value is taken as read; no child: no query
        ("GET", "/homework?group=group", None),
        ("POST", "/classes/5/homework", None),
    ]
    assert json.loads(_Recorder.seen[-1]["body"]) == {"class": 5, "subject": "Maths", "for": "teacher 0"}


def test_pages_carry_the_access_token_an_oidc_back_channel_login_holds(recorder: str, tmp_path: Path) -> None:
    path = write_map(tmp_path, {"dashboard": {"url": "/home"}, "homework": {"url": "/hw", "headers": {"X-Token": "t"}}})
    settings = ClientSettings(journey_map=str(path), sso="oidc", oidc_validation="back-channel")
    web = client_of(recorder, WebClient, "student", settings)
    web.dashboard()  # not logged in: no token, no header
    web.sign_on.tokens = {"access_token": "AT-1", "token_type": "Bearer"}  # as the back channel's login keeps them
    web.dashboard()
    web.homework()
    assert [seen["authorization"] for seen in _Recorder.seen] == [None, "Bearer AT-1", "Bearer AT-1"]


def test_a_step_whose_url_needs_a_value_the_person_has_not_is_not_theirs(recorder: str, tmp_path: Path) -> None:
    """A parent's page for a pupil (no child_id): skipped as not supported, nothing sent."""
    path = write_map(tmp_path, {"timetable": {"url": "/children/{child_id}/timetable"}})
    web = client_of(recorder, WebClient, "student", ClientSettings(journey_map=str(path)))
    with pytest.raises(StepNotSupported, match=r"^timetable \(its URL needs \{child_id\}\)$"):
        web.timetable()
    web.timetable(4)
    assert [seen["path"] for seen in _Recorder.seen] == ["/children/4/timetable"]


# ---- the embedded map's run is the default client's ---------------------------------------------------------


def smoke_with_teachers_first(directory: Path) -> Path:
    """Smoke's first 35 minutes, with every teacher logged in (and their virtual class created) before the first
    pupil. In smoke itself, a pupil who arrives before their teacher reads the dashboard again until the class
    appears or their patience ends, and which way it goes is timing: two runs of the default client measured 162
    and 203 dashboard reads. Here that race is gone, so every step's count is the clients' doing. Everyone of the
    hour logs in within it, each group spread evenly, the pupils and parents at 70% of their peak rate when they
    came 15 minutes after 07:40 (log-normal): at twice the scenario's speed, their peak rate for 20 minutes on end
    passes the resized profile's login rate and is shed (503) within its login timeout. At SMOKE_SPEED: 8.75 s of
    load per run."""
    scenario = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    scenario["window"] = {"start": "07:30", "end": "08:05"}
    for group in scenario["groups"]:
        evenly = [["07:30", 0.0], ["07:35", 1.0]] if group["persona"] == "teacher" else [["07:36", 0.0], ["08:03", 1.0]]
        group["login_time"] = {"distribution": "empirical", "cumulative": evenly}
    path = directory / "smoke-teachers-first.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    return path


def test_the_embedded_map_gives_the_default_client_s_run(tmp_path: Path) -> None:
    """The same people served, the same steps, and every step's requests as many within the runs' noise. People
    browse until their session's deadline, so how many pages each reads follows the response times: two runs of
    the same client differ by a few percent on a quiet machine and 7% beside a CPU hog (homework 221 against
    237). A step's counts may differ by 5%, or by three standard deviations of the two counts' difference (as
    for counts of independent events, the square root of their sum) when that is more. A map that asks the
    wrong page fails the run's requests; one that leaves a step out counts it not supported; one that asks a
    step twice doubles its count, past that noise for every step asked more than 27 times (all but creating
    and opening a class, 9 each). A run that measured the machine, not the platform, fails the test with that
    reason first."""
    scenario = smoke_with_teachers_first(tmp_path)
    runs = {}
    for label, arguments in (("default", []), ("map", ["--client", WEB_CLIENT, "--journey-map", "embedded"])):
        outcome = run_measuring_the_platform(
            RunRequest(
                scenario_path=scenario,
                target=None,
                speed=SMOKE_SPEED,
                reports_dir=tmp_path / label,
                client_arguments=arguments,
            )
        )
        assert_measured_the_platform(outcome.run_dir)
        sessions = pd.read_csv(outcome.run_dir / "sessions.csv").sum(numeric_only=True)
        stats = pd.read_csv(outcome.run_dir / "locust_stats.csv")
        stats = stats[stats["Name"] != "Aggregated"]
        runs[label] = (sessions, dict(zip(stats["Name"], stats["Request Count"], strict=True)), stats)
    (default, default_steps, _), (mapped, mapped_steps, mapped_stats) = runs["default"], runs["map"]
    assert int(mapped_stats["Failure Count"].sum()) == 0
    for column in ("scheduled", "started", "logins_succeeded", "virtual_classes_opened"):
        assert mapped[column] == default[column] > 0, column
    assert mapped["steps_not_supported"] == default["steps_not_supported"] == 0
    assert set(mapped_steps) == set(default_steps)
    for name, count in default_steps.items():
        noise = max(0.05 * count, 3 * math.sqrt(count + mapped_steps[name]))
        assert abs(mapped_steps[name] - count) <= noise, (name, count, mapped_steps[name])
    assert {"dashboard", "homework", "virtual class: join", "virtual class: heartbeat"} <= set(mapped_steps)
