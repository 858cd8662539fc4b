"""deploy/: the image, the Compose file and the Kubernetes manifests, checked without deploying anything.

- Every YAML file parses; the Kubernetes manifests validate against the official JSON schemas of the Kubernetes
  API (vendored by the `kubernetes-validate` package: no network), strictly (no unknown field).
- The pieces agree: the master expects as many workers as are deployed, the workers reach the master's Service
  name and port, the scenario ConfigMap is mounted where --scenario points and is the repository's scenario,
  the run directory is on the reports volume, the target is allowed by --allow-host, the embedded platform
  stands in for the run the master replays, the workers are sized from `schoolsurge plan`.
- A dry render: the master's and workers' command lines go through Locust's real argument parser with the
  surge locustfile loaded (as `locust -f locustfiles/surge.py ...` does), then through the engine's
  `build_context`, so a misspelt option, a bad value or an unreadable scenario fails here.
- The Dockerfile, statically (no Docker here): python:3.11 base, `pip install .`, a non-root user, no
  ENTRYPOINT, the files the commands name copied where they name them.

Each check returns the problems it finds; the last tests break a copy on purpose and expect them found.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from schoolsurge.models.fleet import FleetFigures, schedule_memory_mb
from schoolsurge.models.plan import make_plan
from schoolsurge.models.replay import Replay
from schoolsurge.platform.server import add_target_arguments, check_bind_host
from schoolsurge.platform.services import ent_callback_url
from schoolsurge.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE_FILE = DEPLOY / "compose.yaml"
YOUR_PLATFORM = DEPLOY / "compose.your-platform.yaml"
YOUR_PLATFORM_ENV = {
    "TARGET_URL": "https://ent.example.fr",
    "ALLOW_HOST": "ent.example.fr",
    "ACCOUNTS_FILE": "/srv/accounts.csv",
    "SCALE": "1",
    "SPEED": "1",
    "WORKERS": "14",
}
K8S = DEPLOY / "kubernetes"
KUSTOMIZATION = K8S / "kustomization.yaml"
AFTER_THE_RUN = {"reports-reader.yaml"}  # applied once the master has finished, not with the others

KNOWN_KINDS = {
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Pod"),
    ("batch/v1", "Job"),
    ("apps/v1", "Deployment"),
}
# Kubernetes versions whose schemas the manifests must satisfy: an older supported one and the newest known.
SCHEMA_VERSIONS = ("1.28.0", "latest")
# The options every Locust process of a run must share: each computes the same schedule and guards the same host.
SHARED_OPTIONS = (
    "--scenario",
    "--scale",
    "--speed",
    "--seed",
    "--allow-host",
    "--accounts",
    "--client",
    "--late-after",
    "--drop-after",
)
LOCUST_MASTER_PORT = 5557  # Locust's defaults for --master-bind-port / --master-port and --web-port
LOCUST_WEB_PORT = 8089


# --- small helpers -------------------------------------------------------------------------------------------


def yaml_documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def option(args: list[str], flag: str) -> str | None:
    """The value of `flag` in an argument list (`--flag value` or `--flag=value`), None when absent."""
    for index, arg in enumerate(args):
        if arg == flag:
            return args[index + 1] if index + 1 < len(args) else ""
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def memory_bytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity)


def cpu_cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def container_path(path: str, workdir: str = "/app") -> PurePosixPath:
    return PurePosixPath(path) if path.startswith("/") else PurePosixPath(workdir) / path


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation (${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$). A variable
    without a default that is not set is an error here: the file must run with no environment at all."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        given, op, arg = env.get(name), match["op"], match["arg"]
        if op == ":-":
            return given or arg
        if op == "-":
            return arg if given is None else given
        if op in (":?", "?") and not given:
            raise KeyError(f"{name} must be set ({arg})")
        if given is None:
            raise KeyError(f"{name} is used without a default")
        return given

    return _VARIABLE.sub(substitute, value)


# --- the Dockerfile ------------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    pairs = []
    for line in logical:
        word, _, rest = line.partition(" ")
        pairs.append((word.upper(), rest.strip()))
    return pairs


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [index for index, (word, _) in enumerate(instructions) if word == "FROM"]
    return instructions[starts[-1] :]


def image_facts(text: str) -> dict[str, Any]:
    """What the other files rely on: the runtime stage's working directory, user's uid, volumes, copies."""
    stage = final_stage(dockerfile_instructions(text))
    workdir = "/"
    copies: dict[str, str] = {}
    for word, rest in stage:
        if word == "WORKDIR":
            workdir = str(container_path(rest, workdir))
        elif word == "COPY" and not rest.startswith("--from"):
            *sources, destination = rest.split()
            for source in sources:
                copies[source.rstrip("/")] = str(container_path(destination, workdir))
    uid = re.search(r"useradd\b[^&;]*--uid\s+(\d+)", text)
    volumes = [v for word, rest in stage if word == "VOLUME" for v in json.loads(rest)]
    return {"workdir": workdir, "uid": int(uid[1]) if uid else None, "volumes": volumes, "copies": copies}


def dockerfile_problems(text: str) -> list[str]:
    problems = []
    instructions = dockerfile_instructions(text)
    froms = [rest.split()[0] for word, rest in instructions if word == "FROM"]
    if not froms:
        return ["no FROM"]
    problems += [f"base image {image} is not python:3.11" for image in froms if not image.startswith("python:3.11")]
    stage = final_stage(instructions)
    runs = [rest for word, rest in instructions if word == "RUN"]
    if not any(re.search(r"\bpip install (\S+ )*\.(\s|$)", run) for run in runs):
        problems.append("the package is not installed with `pip install .`")
    users = [rest for word, rest in stage if word == "USER"]
    if not users:
        problems.append("the runtime stage has no USER: it would run as root")
    elif users[-1].split(":")[0] in ("root", "0"):
        problems.append(f"the runtime stage runs as {users[-1]}")
    if any(word == "ENTRYPOINT" for word, _ in instructions):
        problems.append("an ENTRYPOINT: the image must serve as master, worker or platform by its command alone")
    stage_runs = " ".join(rest for word, rest in stage if word == "RUN")
    for tool in re.findall(r"\binstall\b[^&;|]*?\b(build-essential|gcc|g\+\+|make|clang)\b", stage_runs):
        problems.append(f"the runtime stage installs {tool}: build tools belong in the build stage")
    facts = image_facts(text)
    if "/reports" not in facts["volumes"]:
        problems.append("reports/ is not a volume (/reports)")
    for needed in ("locustfiles", "scenarios"):
        if facts["copies"].get(needed) != str(PurePosixPath(facts["workdir"]) / needed):
            problems.append(f"{needed}/ is not copied into the working directory {facts['workdir']}")
    return problems


def test_dockerfile_builds_the_suite_as_a_non_root_image() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text(encoding="utf-8")) == []


def test_dockerfile_copies_only_what_exists_and_what_the_ignore_file_lets_through() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    sources = {
        source.rstrip("/")
        for word, rest in dockerfile_instructions(text)
        if word == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    }
    assert sources >= {"pyproject.toml", "README.md", "schoolsurge", "locustfiles", "scenarios"}
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    ignore = DEPLOY / "Dockerfile.dockerignore"  # BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile
    rules = [line.strip() for line in ignore.read_text(encoding="utf-8").splitlines()]
    rules = [rule for rule in rules if rule and not rule.startswith("#")]
    assert rules[0] == "**", "the ignore file should exclude everything, then let the sources through"
    for source in sources:
        assert f"!{source}" in rules or f"!{source}/" in rules, f"{source} is excluded from the build context"


# --- every YAML file -----------------------------------------------------------------------------------------


def deploy_yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


@pytest.mark.parametrize("path", deploy_yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses_into_mappings(path: Path) -> None:
    documents = yaml_documents(path)
    assert documents, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in documents)


def test_the_deploy_folder_has_what_the_docs_promise() -> None:
    assert {p.name for p in deploy_yaml_files()} >= {
        "compose.yaml",
        "kustomization.yaml",
        "scenario-configmap.yaml",
        "reports-pvc.yaml",
        "master-service.yaml",
        "master-job.yaml",
        "worker-deployment.yaml",
        "reports-reader.yaml",
    }


# --- Kubernetes ----------------------------------------------------------------------------------------------


def kubernetes_manifests() -> dict[str, list[dict[str, Any]]]:
    """Every manifest file of deploy/kubernetes but the kustomization, by file name."""
    return {p.name: yaml_documents(p) for p in sorted(K8S.glob("*.yaml")) if p != KUSTOMIZATION}


def all_kubernetes_docs() -> list[dict[str, Any]]:
    return [doc for docs in kubernetes_manifests().values() for doc in docs]


def pod_spec(doc: Mapping[str, Any]) -> dict[str, Any]:
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def pod_labels(doc: Mapping[str, Any]) -> dict[str, str]:
    return doc["metadata"].get("labels", {}) if doc["kind"] == "Pod" else doc["spec"]["template"]["metadata"]["labels"]


def the(docs: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        doc
        for doc in docs
        if doc.get("kind") == kind
        and (component is None or doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component)
    ]
    assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
    return found[0]


def only_container(doc: Mapping[str, Any]) -> dict[str, Any]:
    containers = pod_spec(doc)["containers"]
    assert len(containers) == 1, f"{doc['metadata']['name']}: one container expected"
    return containers[0]


def mounted_file(doc: Mapping[str, Any], container: Mapping[str, Any], path: str) -> tuple[dict[str, Any], str] | None:
    """The pod volume and the file name inside it that `path` names in this container, None if not mounted."""
    target = PurePosixPath(path)
    volumes = {volume["name"]: volume for volume in pod_spec(doc).get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        mount_path = PurePosixPath(mount["mountPath"])
        if mount.get("subPath"):
            if target == mount_path:
                return volumes.get(mount["name"], {}), mount["subPath"]
            continue
        if mount_path in target.parents:
            return volumes.get(mount["name"], {}), str(target.relative_to(mount_path))
    return None


def configmap_file(docs: list[dict[str, Any]], volume: Mapping[str, Any], name: str) -> str | None:
    """The text a configMap volume shows as file `name`, None when it shows no such file."""
    source = volume.get("configMap")
    if source is None:
        return None
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == source.get("name")]
    if not maps:
        return None
    keys = {item["path"]: item["key"] for item in source["items"]} if source.get("items") else None
    key = keys.get(name) if keys is not None else name
    return maps[0].get("data", {}).get(key)


def scenario_from_text(text: str, tmp_dir: Path, name: str) -> Scenario:
    path = tmp_dir / name
    path.write_text(text, encoding="utf-8")
    return load_scenario(path)


def kubernetes_problems(docs: list[dict[str, Any]], tmp_dir: Path) -> list[str]:
    """How the manifests disagree with each other, with the image and with the plan."""
    problems: list[str] = []
    for doc in docs:
        if (doc.get("apiVersion"), doc.get("kind")) not in KNOWN_KINDS:
            problems.append(f"unknown apiVersion/kind {doc.get('apiVersion')}/{doc.get('kind')}")
    master_job, workers = the(docs, "Job", "master"), the(docs, "Deployment", "worker")
    service, claim = the(docs, "Service", "master"), the(docs, "PersistentVolumeClaim")
    master, worker = only_container(master_job), only_container(workers)
    image = image_facts(DOCKERFILE.read_text(encoding="utf-8"))

    for doc in docs:
        if doc["kind"] in ("Job", "Deployment", "Pod"):
            name = doc["metadata"]["name"]
            for container in pod_spec(doc)["containers"]:
                if not container.get("image") or not (container.get("command") or container.get("args")):
                    problems.append(f"{name}: a container without image or command")
            context = pod_spec(doc).get("securityContext", {})
            if context.get("runAsNonRoot") is not True or context.get("runAsUser") != image["uid"]:
                problems.append(f"{name}: must run as non-root uid {image['uid']}, the image's user")
    for doc in (master_job, workers):
        command = doc["spec"]["template"]["spec"]["containers"][0]
        args = [*command.get("command", []), *command.get("args", [])]
        if args[:3] != ["locust", "-f", "locustfiles/surge.py"]:
            problems.append(f"{doc['metadata']['name']}: not `locust -f locustfiles/surge.py ...`: {args[:3]}")
    if master_job["spec"]["template"]["spec"].get("restartPolicy") != "Never":
        problems.append("the master Job must not restart its pod (the morning would start over)")

    m_args, w_args = master.get("args", []), worker.get("args", [])
    if "--master" not in m_args:
        problems.append("the master's args lack --master")
    if not {"--headless", "--autostart"} & set(m_args):
        problems.append("the master starts nothing by itself: --headless or --autostart")
    if "--worker" not in w_args:
        problems.append("the workers' args lack --worker")
    replicas = workers["spec"].get("replicas", 1)
    if option(m_args, "--expect-workers") != str(replicas):
        problems.append(f"master --expect-workers {option(m_args, '--expect-workers')} != worker replicas {replicas}")
    if any(d.get("kind") == "HorizontalPodAutoscaler" for d in docs):
        problems.append("workers must not autoscale: the schedule is split over the workers present at the start")

    # The master's Service: its selector picks the master's pod and no worker, its ports are the master's.
    selector = service["spec"].get("selector", {})
    if not selector or selector.items() - pod_labels(master_job).items():
        problems.append("the master Service does not select the master's pod")
    if not selector.items() - pod_labels(workers).items():
        problems.append("the master Service also selects the workers")
    container_ports = {p.get("name"): p["containerPort"] for p in master.get("ports", [])}
    service_ports = {}
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        service_ports[port["port"]] = container_ports.get(target) if isinstance(target, str) else target
    bind_port = int(option(m_args, "--master-bind-port") or LOCUST_MASTER_PORT)
    web_port = int(option(m_args, "--web-port") or LOCUST_WEB_PORT)
    worker_port = int(option(w_args, "--master-port") or LOCUST_MASTER_PORT)
    if service_ports.get(worker_port) != bind_port:
        problems.append(f"workers dial port {worker_port}; the Service sends it to {service_ports.get(worker_port)}")
    if bind_port not in container_ports.values():
        problems.append(f"the master's container does not declare its bind port {bind_port}")
    if web_port not in service_ports.values():
        problems.append(f"the web UI port {web_port} is not reachable through the Service")
    if option(w_args, "--master-host") != service["metadata"]["name"]:
        problems.append(
            f"workers' --master-host {option(w_args, '--master-host')} != Service {service['metadata']['name']}"
        )

    # Options every process must share; the target is allowed.
    for flag in SHARED_OPTIONS:
        if option(m_args, flag) != option(w_args, flag):
            problems.append(f"{flag}: master {option(m_args, flag)} != workers {option(w_args, flag)}")
    target = option(m_args, "--host") or option(m_args, "-H")
    if not target or urlsplit(target).hostname != option(m_args, "--allow-host"):
        problems.append(f"the target {target} is not the host named by --allow-host {option(m_args, '--allow-host')}")

    # The scenario: a ConfigMap mounted where --scenario points, in the master and in every worker.
    scenario: Scenario | None = None
    for doc, container in ((master_job, master), (workers, worker)):
        name, path = doc["metadata"]["name"], option(container.get("args", []), "--scenario") or ""
        found = mounted_file(doc, container, str(container_path(path, image["workdir"])))
        text = configmap_file(docs, found[0], found[1]) if found else None
        if text is None:
            problems.append(f"{name}: --scenario {path} is no file of a mounted ConfigMap")
            continue
        try:
            scenario = scenario_from_text(text, tmp_dir, PurePosixPath(path).name)
        except Exception as error:  # any refusal of the scenario loader is the finding
            problems.append(f"{name}: the scenario at {path} does not load: {error}")
            continue
        original = ROOT / "scenarios" / PurePosixPath(path).name
        if original.exists() and load_scenario(original) != scenario:
            problems.append(f"the ConfigMap's {original.name} differs from scenarios/{original.name}: regenerate it")

    # Your platform's test accounts: a file of a mounted Secret, in the master and in every worker (the seeded
    # accounts exist only on the embedded platform, which cannot hold a national run).
    for doc, container in ((master_job, master), (workers, worker)):
        name, path = doc["metadata"]["name"], option(container.get("args", []), "--accounts")
        if path is None:
            problems.append(f"{name}: no --accounts: the target is not the embedded platform")
            continue
        found = mounted_file(doc, container, str(container_path(path, image["workdir"])))
        if not found or "secret" not in found[0]:
            problems.append(f"{name}: --accounts {path} is no file of a mounted Secret")

    # The run directory is on the reports claim; the reader mounts the same claim.
    run_dir = option(m_args, "--run-dir") or ""
    found = mounted_file(master_job, master, run_dir)
    claim_name = claim["metadata"]["name"]
    if not found or found[0].get("persistentVolumeClaim", {}).get("claimName") != claim_name:
        problems.append(f"--run-dir {run_dir} is not on the PersistentVolumeClaim {claim_name}")
    for doc in docs:
        if doc["kind"] == "Pod":
            claims = [v.get("persistentVolumeClaim", {}).get("claimName") for v in pod_spec(doc).get("volumes", [])]
            if claim_name not in claims:
                problems.append(f"{doc['metadata']['name']} does not mount the reports claim")

    # Workers sized from the plan: a core each, the sessions' memory shared, each builds its own part of the schedule.
    if scenario is not None:
        try:
            replay = Replay(
                scenario, float(option(m_args, "--scale") or "nan"), float(option(m_args, "--speed") or "nan")
            )
            fleet = make_plan(replay, FleetFigures())["fleet"]
        except Exception as error:
            return [*problems, f"no plan for the master's --scale/--speed: {error}"]
        requests = worker.get("resources", {}).get("requests", {})
        limits = worker.get("resources", {}).get("limits", {})
        if replicas < fleet["workers"]:
            problems.append(f"{replicas} workers; the plan asks for {fleet['workers']}")
        if cpu_cores(str(requests.get("cpu", "0"))) < 1:
            problems.append("each worker process needs a core: requests.cpu >= 1")
        need_mb = fleet["memory_mb"] + schedule_memory_mb(replay.people, replicas)
        have_mb = replicas * memory_bytes(str(requests.get("memory", "0"))) / 1e6
        if have_mb < need_mb:
            problems.append(f"workers request {have_mb:,.0f} MB in all; the plan needs {need_mb:,.0f} MB")
        if "memory" not in limits or memory_bytes(str(limits["memory"])) < memory_bytes(
            str(requests.get("memory", "0"))
        ):
            problems.append("each worker needs a memory limit at least its request")
    return problems


def test_kubernetes_manifests_are_known_kinds_with_one_object_per_file() -> None:
    for name, docs in kubernetes_manifests().items():
        assert len(docs) == 1, f"{name}: one object per file"
        assert (docs[0]["apiVersion"], docs[0]["kind"]) in KNOWN_KINDS, name


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_kubernetes_manifests_match_the_official_schemas(version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[dev]'")
    if version == "latest":
        version = kubernetes_validate.latest_version()
    for name, docs in kubernetes_manifests().items():
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{name} against Kubernetes {version}: {error.message} at {list(error.path)}")


def test_the_schema_check_finds_a_misspelt_field() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[dev]'")
    doc = copy.deepcopy(the(all_kubernetes_docs(), "Deployment", "worker"))
    container = pod_spec(doc)["containers"][0]
    container["volumeMount"] = container.pop("volumeMounts")
    with pytest.raises(kubernetes_validate.ValidationError, match="volumeMount"):
        kubernetes_validate.validate(doc, SCHEMA_VERSIONS[0], strict=True)


def test_kubernetes_manifests_agree_with_each_other_the_image_and_the_plan(tmp_path: Path) -> None:
    assert kubernetes_problems(all_kubernetes_docs(), tmp_path) == []


def test_kustomization_lists_every_manifest_and_names_the_image() -> None:
    kustomization = yaml_documents(KUSTOMIZATION)[0]
    listed = set(kustomization["resources"])
    assert listed == {name for name in kubernetes_manifests() if name not in AFTER_THE_RUN}
    images = {image["name"] for image in kustomization.get("images", [])}
    for doc in all_kubernetes_docs():
        if doc["kind"] in ("Job", "Deployment", "Pod"):
            for container in pod_spec(doc)["containers"]:
                assert container["image"].split(":")[0] in images, f"{container['image']}: not set by kustomization"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_manifests_offline() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(rendered.stdout) if doc)
    assert kinds == ["ConfigMap", "Deployment", "Job", "PersistentVolumeClaim", "Service"]


# --- Compose -------------------------------------------------------------------------------------------------


def merge_compose(base: Any, override: Any, key: str = "") -> Any:
    """`docker compose -f base -f override`: mappings merge, a command is replaced, other lists are joined."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = merge_compose(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in ("command", "entrypoint"):
        return [*base, *(item for item in override if item not in base)]
    return override


def compose(env: Mapping[str, str] | None = None, *overrides: Path) -> dict[str, Any]:
    """deploy/compose.yaml (and override files) as Compose sees them with this environment (none: defaults)."""
    spec = yaml_documents(COMPOSE_FILE)[0]
    for path in overrides:
        spec = merge_compose(spec, yaml_documents(path)[0])
    return interpolate(spec, env or {})


def command_of(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(arg) for arg in command]


def compose_problems(spec: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    services = spec.get("services", {})
    missing = {"platform", "master", "worker"} - services.keys()
    if missing:
        return [f"services missing: {sorted(missing)}"]
    image = image_facts(DOCKERFILE.read_text(encoding="utf-8"))
    m_args, w_args = command_of(services["master"]), command_of(services["worker"])
    for name, args in (("master", m_args), ("worker", w_args)):
        if args[:3] != ["locust", "-f", "locustfiles/surge.py"]:
            problems.append(f"{name}: not `locust -f locustfiles/surge.py ...`")
    if not {"--master", "--headless"} <= set(m_args):
        problems.append("the master must run --master --headless")
    replicas = int(services["worker"].get("deploy", {}).get("replicas", 1))
    if option(m_args, "--expect-workers") != str(replicas):
        problems.append(f"master --expect-workers {option(m_args, '--expect-workers')} != worker replicas {replicas}")
    if "--worker" not in w_args or option(w_args, "--master-host") != "master":
        problems.append("the workers must run --worker --master-host master (the master service's name)")
    if int(option(w_args, "--master-port") or LOCUST_MASTER_PORT) != int(
        option(m_args, "--master-bind-port") or LOCUST_MASTER_PORT
    ):
        problems.append("the workers dial another port than the master binds")
    for flag in SHARED_OPTIONS:
        if option(m_args, flag) != option(w_args, flag):
            problems.append(f"{flag}: master {option(m_args, flag)} != workers {option(w_args, flag)}")
    target = option(m_args, "--host") or option(m_args, "-H") or ""
    target_host = urlsplit(target).hostname
    if target_host != option(m_args, "--allow-host"):
        problems.append(f"the target {target} is not allowed: --allow-host {option(m_args, '--allow-host')}")

    # The run directory is on the reports volume.
    run_dir = PurePosixPath(option(m_args, "--run-dir") or "/nowhere")
    mounts = [str(v).split(":") for v in services["master"].get("volumes", [])]
    if not any(
        len(m) > 1 and m[0] in spec.get("volumes", {}) and PurePosixPath(m[1]) in run_dir.parents for m in mounts
    ):
        problems.append(f"--run-dir {run_dir} is not on a named volume")
    if not any(len(m) > 1 and m[1] in image["volumes"] for m in mounts):
        problems.append(f"the master does not mount the image's volume {image['volumes']}")

    # Another platform: its test accounts, as a Compose secret given to the master and to every worker.
    if target_host != "platform":
        for name, args in (("master", m_args), ("worker", w_args)):
            path = option(args, "--accounts")
            secret = PurePosixPath(path).name if path else None
            given = [s if isinstance(s, str) else s.get("source") for s in services[name].get("secrets", [])]
            if path != f"/run/secrets/{secret}" or secret not in given or secret not in spec.get("secrets", {}):
                problems.append(
                    f"{name}: --accounts {path} is not a secret of the service: the target is not the "
                    "embedded platform, whose accounts derive from the seed"
                )

    # The embedded platform, when the target is it: the run the master replays, reachable by its service name.
    scenario_path = option(m_args, "--scenario") or ""
    local = ROOT / PurePosixPath(container_path(scenario_path, image["workdir"])).relative_to(image["workdir"])
    scenario = load_scenario(local)
    scale = float(option(m_args, "--scale") or scenario.run.scale)
    speed = float(option(m_args, "--speed") or scenario.run.speed)
    if target_host == "platform":
        p_args = command_of(services["platform"])
        if p_args[:2] != ["schoolsurge", "target"]:
            return [*problems, "the platform is not `schoolsurge target ...`"]
        parser = argparse.ArgumentParser(prog="schoolsurge target", exit_on_error=False)
        add_target_arguments(parser)
        try:
            platform = parser.parse_args(p_args[2:])
            check_bind_host(platform.host, platform.allow_host)
        except (argparse.ArgumentError, ValueError, SystemExit) as error:
            return [*problems, f"the platform's command is refused: {error}"]
        if platform.host in ("127.0.0.1", "localhost", "::1"):
            problems.append("the platform listens on loopback only: the workers cannot reach it")
        if ent_callback_url(target) not in {ent_callback_url(url) for url in platform.public_url or []}:
            problems.append(f"the platform's CAS does not know the service at {target}: --public-url {target}")
        if (urlsplit(target).port or 80) != platform.port:
            problems.append(f"the target's port is not the platform's --port {platform.port}")
        expected = {
            "--run-scale": (platform.run_scale, scale),
            "--run-speed": (platform.run_speed, speed),
            "--seed": (platform.seed, int(option(m_args, "--seed") or scenario.run.seed)),
            "--size": (platform.size, Replay(scenario, scale, speed).platform_pupils),
            "--hash-cost": (platform.hash_cost, scenario.platform.hash_cost),
            "--profile": (platform.profile, scenario.platform.profile),
        }
        for flag, (have, want) in expected.items():
            if have is None or (float(have) != float(want) if isinstance(want, float) else have != want):
                problems.append(f"platform {flag} {have}: the run needs {want}")
        ready = platform.ready_file
        health = " ".join(services["platform"].get("healthcheck", {}).get("test", []))
        if ready is None or str(ready) not in health:
            problems.append("the platform's healthcheck does not wait for its --ready-file")
        if services["master"].get("depends_on", {}).get("platform", {}).get("condition") != "service_healthy":
            problems.append("the master starts before the platform is healthy")
    return problems


def test_compose_runs_with_no_environment_and_its_services_agree() -> None:
    assert compose_problems(compose()) == []


@pytest.mark.parametrize(
    "env",
    [
        {"WORKERS": "8", "SCALE": "0.0002", "SPEED": "20", "SEED": "7", "PLATFORM_PUPILS": "2540"},
        {
            "SCENARIO": "scenarios/smoke.yaml",
            "PLATFORM_PUPILS": "127",
            "PLATFORM_HASH_COST": "4",
            "PLATFORM_PROFILE": "resized",
            "SCALE": "0.00001",
            "SPEED": "120",
            "RUN_NAME": "smoke-1",
        },
    ],
)
def test_compose_variables_keep_master_workers_and_platform_in_step(env: dict[str, str]) -> None:
    spec = compose(env)
    assert spec["services"]["worker"]["deploy"]["replicas"] == env.get("WORKERS", "2")
    assert compose_problems(spec) == []


def test_compose_for_your_own_platform_allows_that_host_and_brings_its_accounts() -> None:
    spec = compose(YOUR_PLATFORM_ENV, YOUR_PLATFORM)
    assert compose_problems(spec) == []
    master = command_of(spec["services"]["master"])
    assert option(master, "--host") == "https://ent.example.fr" and option(master, "--expect-workers") == "14"
    assert spec["services"]["worker"]["deploy"]["replicas"] == "14"
    assert spec["secrets"]["accounts"]["file"] == "/srv/accounts.csv"


@pytest.mark.parametrize("unset", ["TARGET_URL", "ALLOW_HOST", "ACCOUNTS_FILE"])
def test_compose_for_your_own_platform_refuses_to_start_without_naming_it(unset: str) -> None:
    env = {name: value for name, value in YOUR_PLATFORM_ENV.items() if name != unset}
    with pytest.raises(KeyError, match=unset):
        compose(env, YOUR_PLATFORM)


# --- dry render: the real Locust argument parser and the engine's context ------------------------------------

RENDER = r"""
import contextlib, io, json, sys
from locust import argument_parser
from locust.main import merge_locustfiles_content
import schoolsurge.safety as safety
from schoolsurge.engine import build_context

safety.is_loopback_host = lambda host: False  # no DNS: a host is allowed only by name, as on another network
results = {}
for name, job in json.load(sys.stdin).items():
    args, err = job["args"], io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            located = argument_parser.parse_locustfile_option(args)
            merge_locustfiles_content(argument_parser.get_locustfiles_locally(located))
            parser = argument_parser.get_parser()
            options = parser.parse_args(args)
        if options.autoquit != -1 and not options.autostart:
            raise ValueError("--autoquit is only meaningful in combination with --autostart")
        if options.master and options.worker:
            raise ValueError("--master cannot be combined with --worker")
        context = build_context(options)
        if options.host:
            safety.check_target(options.host, options.allow_host)
        results[name] = {
            "ok": True,
            "role": "master" if options.master else "worker" if options.worker else "local",
            "expect_workers": options.expect_workers,
            "master_host": options.master_host,
            "master_port": options.master_port,
            "host": options.host,
            "scenario": context.scenario.name,
            "scale": context.replay.scale,
            "speed": context.replay.speed,
            "seed": context.seed,
            "run_dir": None if context.run_dir is None else str(context.run_dir),
            "accounts": type(context.accounts).__name__,
        }
    except SystemExit as exit_:
        results[name] = {"ok": False, "error": err.getvalue().strip().splitlines()[-3:] or [str(exit_)]}
    except Exception as error:
        results[name] = {"ok": False, "error": [f"{type(error).__name__}: {error}"]}
print(json.dumps(results))
"""


def in_repository(args: list[str], mounts: Mapping[str, Path]) -> list[str]:
    """A container's args with the paths it mounts replaced by local ones (the working directory is the
    repository, which the image copies locustfiles/ and scenarios/ from)."""
    mapped = []
    for arg in args:
        for prefix, local in mounts.items():
            if arg == prefix or arg.startswith(prefix + "/"):
                arg = str(local) + arg[len(prefix) :]
        mapped.append(arg)
    return mapped


def dry_render(jobs: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOCUST_")}
    finished = subprocess.run(
        [sys.executable, "-c", RENDER],
        input=json.dumps({name: {"args": args} for name, args in jobs.items()}),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every Locust command line of deploy/, rendered once; plus deliberate mistakes that must be refused."""
    tmp = tmp_path_factory.mktemp("render")
    docs = all_kubernetes_docs()
    configmap = the(docs, "ConfigMap")
    scenarios = tmp / "etc-scenarios"
    scenarios.mkdir()
    for key, text in configmap["data"].items():
        (scenarios / key).write_text(text, encoding="utf-8")
    accounts = tmp / "accounts"
    accounts.mkdir()
    (accounts / "accounts.csv").write_text(
        "role,username,password\nstudent,jeanne.martin,x\nteacher,paul.durand,x\nparent,marie.petit,x\n",
        encoding="utf-8",
    )
    master_job, workers = the(docs, "Job", "master"), the(docs, "Deployment", "worker")
    mount_of = {m["name"]: m["mountPath"] for m in only_container(master_job)["volumeMounts"]}
    mounts = {
        mount_of["scenario"]: scenarios,
        mount_of["accounts"]: accounts,
        "/run/secrets/accounts": accounts / "accounts.csv",
        "/reports": tmp / "reports",
    }

    def k8s_args(doc: dict[str, Any]) -> list[str]:
        container = only_container(doc)
        return in_repository([*container["command"], *container["args"]][1:], mounts)

    services = compose()["services"]
    jobs = {
        "k8s master": k8s_args(master_job),
        "k8s worker": k8s_args(workers),
        "compose master": in_repository(command_of(services["master"])[1:], mounts),
        "compose worker": in_repository(command_of(services["worker"])[1:], mounts),
    }
    yours = compose(YOUR_PLATFORM_ENV, YOUR_PLATFORM)["services"]
    jobs["your-platform master"] = in_repository(command_of(yours["master"])[1:], mounts)
    jobs["your-platform worker"] = in_repository(command_of(yours["worker"])[1:], mounts)
    worker = jobs["compose worker"]
    jobs["typo"] = [*worker[: worker.index("--master-host")], "--master-hots", "master"]
    jobs["bad scale"] = [*jobs["compose master"], "--scale", "2"]
    jobs["not allowed"] = [*jobs["compose master"], "--allow-host", "somebody-else.example"]
    return dry_render(jobs)


COMMAND_LINES = ["k8s master", "k8s worker", "compose master", "compose worker"]
COMMAND_LINES += ["your-platform master", "your-platform worker"]


@pytest.mark.parametrize("name", COMMAND_LINES)
def test_locust_and_the_locustfile_accept_every_option(rendered: dict[str, dict[str, Any]], name: str) -> None:
    assert rendered[name]["ok"], f"{name}: {rendered[name]['error']}"


def test_rendered_roles_agree_on_the_run(rendered: dict[str, dict[str, Any]]) -> None:
    for fleet in ("k8s", "compose", "your-platform"):
        master, worker = rendered[f"{fleet} master"], rendered[f"{fleet} worker"]
        assert (master["role"], worker["role"]) == ("master", "worker")
        run = ("scenario", "scale", "speed", "seed")
        assert [master[k] for k in run] == [worker[k] for k in run], fleet
        assert master["run_dir"] and worker["run_dir"] is None  # the master writes the run directory
    k8s_workers = the(all_kubernetes_docs(), "Deployment", "worker")["spec"]["replicas"]
    assert rendered["k8s master"]["expect_workers"] == k8s_workers
    assert rendered["k8s worker"]["master_host"] == the(all_kubernetes_docs(), "Service")["metadata"]["name"]
    assert (rendered["k8s master"]["scale"], rendered["k8s master"]["speed"]) == (1.0, 1.0)  # the national morning
    assert rendered["compose master"]["expect_workers"] == int(compose()["services"]["worker"]["deploy"]["replicas"])
    assert rendered["compose worker"]["master_host"] == "master"


def test_the_dry_render_refuses_what_locust_or_the_suite_would_refuse(rendered: dict[str, dict[str, Any]]) -> None:
    assert not rendered["typo"]["ok"] and "--master-hots" in " ".join(rendered["typo"]["error"])
    assert not rendered["bad scale"]["ok"]
    assert not rendered["not allowed"]["ok"] and "allow-host" in " ".join(rendered["not allowed"]["error"])


# --- the checks find what they look for ----------------------------------------------------------------------


def mutated_k8s(change: Any) -> list[dict[str, Any]]:
    docs = copy.deepcopy(all_kubernetes_docs())
    change(docs)
    return docs


def set_arg(args: list[str], flag: str, value: str) -> None:
    args[args.index(flag) + 1] = value


def master_args(docs: list[dict[str, Any]]) -> list[str]:
    return only_container(the(docs, "Job", "master"))["args"]


def worker_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return only_container(the(docs, "Deployment", "worker"))


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        (lambda d: set_arg(master_args(d), "--expect-workers", "13"), "--expect-workers"),
        (lambda d: the(d, "Deployment", "worker")["spec"].update(replicas=70), "--expect-workers"),
        (lambda d: set_arg(worker_of(d)["args"], "--master-host", "locust"), "--master-host"),
        (lambda d: set_arg(worker_of(d)["args"], "--seed", "7"), "--seed"),
        (lambda d: set_arg(master_args(d), "--allow-host", "other.invalid"), "--allow-host"),
        (lambda d: set_arg(master_args(d), "--run-dir", "/tmp/run"), "--run-dir"),
        (lambda d: worker_of(d)["volumeMounts"][0].update(mountPath="/etc/x"), "--scenario"),
        (lambda d: the(d, "ConfigMap")["data"].update({"first-day-2021.yaml": "name: x\n"}), "does not load"),
        (lambda d: the(d, "Service")["spec"]["ports"][0].update(port=5558), "workers dial port"),
        (
            lambda d: the(d, "Service")["spec"].update(selector={"app.kubernetes.io/name": "schoolsurge"}),
            "also selects",
        ),
        (lambda d: worker_of(d)["resources"]["requests"].update(memory="200Mi"), "MB"),
        (lambda d: worker_of(d)["resources"]["requests"].update(cpu="500m"), "core"),
        (lambda d: pod_spec(the(d, "Job", "master"))["securityContext"].pop("runAsNonRoot"), "non-root"),
        (lambda d: set_arg(master_args(d), "--accounts", "/tmp/a.csv"), "Secret"),
        (lambda d: set_arg(worker_of(d)["args"], "--accounts", "/x.csv"), "--accounts"),
        (lambda d: d.append({"apiVersion": "v1beta1", "kind": "Thing", "metadata": {"name": "x"}}), "unknown"),
    ],
)
def test_kubernetes_checks_find_a_broken_manifest(change: Any, finding: str, tmp_path: Path) -> None:
    problems = kubernetes_problems(mutated_k8s(change), tmp_path)
    assert any(finding in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("env", "change", "finding"),
    [
        ({}, lambda s: s["services"]["worker"]["deploy"].update(replicas="3"), "--expect-workers"),
        ({"SCALE": "0.0002"}, None, "--size"),  # the platform would lack the run's accounts
        ({}, lambda s: set_arg(s["services"]["master"]["command"], "--allow-host", "other"), "not allowed"),
        ({"SCENARIO": "scenarios/smoke.yaml", "PLATFORM_PUPILS": "1270"}, None, "--hash-cost"),
        ({}, lambda s: set_arg(s["services"]["platform"]["command"], "--public-url", "http://0.0.0.0:8080"), "CAS"),
        ({}, lambda s: set_arg(s["services"]["worker"]["command"], "--master-host", "localhost"), "--master-host"),
        ({}, lambda s: set_arg(s["services"]["master"]["command"], "--run-dir", "/tmp/run"), "--run-dir"),
        ({}, lambda s: s["services"]["master"].pop("depends_on"), "healthy"),
    ],
)
def test_compose_checks_find_a_broken_file(env: dict[str, str], change: Any, finding: str) -> None:
    spec = compose(env)
    if change is not None:
        change(spec)
    problems = compose_problems(spec)
    assert any(finding in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        (lambda s: s["services"]["worker"].pop("secrets"), "worker: --accounts"),
        (lambda s: s["services"]["master"]["command"].remove("--accounts"), "master: --accounts None"),
        (lambda s: set_arg(s["services"]["worker"]["command"], "--allow-host", "platform"), "--allow-host"),
    ],
)
def test_compose_checks_find_a_broken_override(change: Any, finding: str) -> None:
    spec = compose(YOUR_PLATFORM_ENV, YOUR_PLATFORM)
    change(spec)
    problems = compose_problems(spec)
    assert any(finding in problem for problem in problems), problems


def test_compose_variables_need_a_default() -> None:
    with pytest.raises(KeyError):
        interpolate({"a": "${NO_DEFAULT}"}, {})
    assert interpolate(["$${X}", "${Y:-1}", "${Y-2}"], {"Y": ""}) == ["${X}", "1", ""]


@pytest.mark.parametrize(
    ("edit", "finding"),
    [
        (lambda t: t.replace("FROM python:3.11-slim\n", "FROM python:3.12-slim\n"), "python:3.11"),
        (lambda t: t.replace("USER surge", "USER root"), "runs as root"),
        (lambda t: t.replace("USER surge\n", ""), "no USER"),
        (lambda t: t.replace("RUN pip install .", "RUN pip install schoolsurge"), "pip install ."),
        (lambda t: t + 'ENTRYPOINT ["locust"]\n', "ENTRYPOINT"),
        (lambda t: t.replace('VOLUME ["/reports"]', 'VOLUME ["/data"]'), "volume"),
        (lambda t: t.replace("COPY scenarios ./scenarios", "COPY scenarios /scenarios"), "scenarios/"),
        (lambda t: t.replace("USER surge", "RUN apt-get install --yes gcc\nUSER surge"), "build tools"),
    ],
)
def test_dockerfile_checks_find_a_broken_dockerfile(edit: Any, finding: str) -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    changed = edit(text)
    assert changed != text, "the edit no longer applies to deploy/Dockerfile"
    assert any(finding in problem for problem in dockerfile_problems(changed)), dockerfile_problems(changed)
