"""The deployment files under deploy/ agree with the code: they parse, they start programs that exist, they set
only settings that exist, and the NATS and systemd files pass their own tools' checks where those are installed."""

from __future__ import annotations

import configparser
import importlib
import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from services.runtime.nats_server import EmbeddedNatsServer, nats_server_binary

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
SYSTEMD = DEPLOY / "systemd"
NATS_ENV = {"NATS_JETSTREAM_KEY": "k", "NATS_CRISIS_PASSWORD": "p", "NATS_ADMIN_PASSWORD": "a", "POD_NAME": "nats-0"}
# every module holding CRISIS_* settings (the launcher's are `make run`'s own)
SETTINGS_MODULES = (
    "services.runtime.settings",
    "services.runtime.launcher",
    "services.intake_gateway.settings",
    "services.dispatcher.settings",
    "services.notifier.settings",
    "services.sms_sandbox.settings",
    "services.projections.settings",
)


def console_scripts() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def settings_variables() -> set[str]:
    """Every CRISIS_* variable some settings class reads."""
    names: set[str] = set()
    for module_name in SETTINGS_MODULES:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseSettings) and value is not BaseSettings:
                prefix = value.model_config.get("env_prefix", "")
                for field_name, field in value.model_fields.items():
                    names.add(f"{prefix}{field_name}".upper())
                    if isinstance(field.validation_alias, str):
                        names.add(field.validation_alias.upper())
    assert names, "no settings classes found"
    return names


def yaml_files() -> list[Path]:
    return sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomized_documents() -> list[dict[str, Any]]:
    """What ``kubectl apply -k deploy/k8s`` applies: the listed resources (secret.example.yaml is not one)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def workloads(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] in ("Deployment", "StatefulSet")]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def is_crisis_image(image: str) -> bool:
    return image.split(":")[0].rsplit("/", 1)[-1] == "crisis-dispatch"


def test_every_yaml_file_parses() -> None:
    assert yaml_files(), "no YAML under deploy/"
    for path in yaml_files():
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        assert documents, f"{path} is empty"


def test_k8s_workloads_start_console_scripts_and_set_known_settings() -> None:
    scripts, known = console_scripts(), settings_variables()
    crisis = [w for w in workloads(k8s_documents()) if any(is_crisis_image(c["image"]) for c in containers(w))]
    started = set()
    for workload in crisis:
        for container in containers(workload):
            command = container.get("command") or []
            assert command and command[0] in scripts, f"{workload['metadata']['name']}: {command} is no console script"
            started.add(command[0])
            for env in container.get("env", []):
                if env["name"].startswith("CRISIS_"):
                    assert env["name"] in known, f"{workload['metadata']['name']}: unknown setting {env['name']}"
    assert started == {"crisis-intake-gateway", "crisis-dispatcher", "crisis-notifier", "crisis-projections"}


def test_k8s_config_maps_and_secrets_hold_only_known_settings() -> None:
    known = settings_variables()
    documents = k8s_documents()
    crisis_config = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "crisis-config")
    crisis_secrets = next(d for d in documents if d["kind"] == "Secret" and d["metadata"]["name"] == "crisis-secrets")
    for key in [*crisis_config["data"], *crisis_secrets["stringData"]]:
        assert key in known, f"unknown setting {key}"
    # every key a workload takes from a secret or config map is in the example (or the applied config map)
    defined = {
        (d["kind"], d["metadata"]["name"]): set((d.get("data") or {}) | (d.get("stringData") or {}))
        for d in documents
        if d["kind"] in ("Secret", "ConfigMap")
    }
    for workload in workloads(documents):
        for container in containers(workload):
            for env in container.get("env", []):
                for kind, ref in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    if ref in env.get("valueFrom", {}):
                        source = env["valueFrom"][ref]
                        assert source["key"] in defined[(kind, source["name"])], f"{source} is not documented"
            for source in container.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in defined


def test_k8s_selectors_probes_and_budgets_match_their_workloads() -> None:
    documents = kustomized_documents()
    kinds = {d["kind"] for d in documents}
    assert {"Namespace", "StatefulSet", "Deployment", "Service", "PodDisruptionBudget", "ConfigMap"} <= kinds
    assert not any(d["kind"] == "Secret" for d in documents), "secrets must not be applied from the repository"
    pod_labels = []
    for workload in workloads(documents):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
        pod_labels.append(labels)
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in containers(workload):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            port_names = {p["name"] for p in container.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if "httpGet" in container.get(probe, {}):
                    assert container[probe]["httpGet"]["port"] in port_names
                    assert container[probe]["httpGet"]["path"].startswith(("/healthz", "/livez", "/readyz"))
            mounts = {m["name"] for m in container.get("volumeMounts", [])}
            claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
            assert mounts <= {v["name"] for v in spec.get("volumes", [])} | claims
    for document in documents:
        selector = None
        if document["kind"] == "Service":
            selector = document["spec"]["selector"]
        elif document["kind"] == "PodDisruptionBudget":
            selector = document["spec"]["selector"]["matchLabels"]
        if selector is not None:
            assert any(selector.items() <= labels.items() for labels in pod_labels), document["metadata"]["name"]
    nats = next(w for w in workloads(documents) if w["metadata"]["name"] == "nats")
    assert nats["spec"]["replicas"] == 3
    config = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "crisis-config")
    assert config["data"]["CRISIS_STREAM_REPLICAS"] == "3"


def test_k8s_postgres_init_is_the_repository_init() -> None:
    init = next(d for d in k8s_documents() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "postgres-init")
    assert init["data"]["init.sql"] == (DEPLOY / "postgres" / "init.sql").read_text()
    assert init["data"]["docker-init.sh"] == (DEPLOY / "postgres" / "docker-init.sh").read_text()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomization_renders() -> None:
    rendered = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    documents = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert all(d["metadata"].get("namespace") == "crisis" for d in documents if d["kind"] != "Namespace")


def test_compose_services_start_console_scripts_and_set_known_settings() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    scripts, known = console_scripts(), settings_variables()
    started = set()
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        if is_crisis_image(service.get("image", "")):
            assert service["command"][0] in scripts, f"{name}: {service['command']} is no console script"
            started.add(service["command"][0])
            for variable in environment:
                assert variable in known, f"{name}: unknown setting {variable}"
        for dependency in service.get("depends_on") or {}:
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} does not exist"
    assert started == {
        "crisis-intake-gateway",
        "crisis-dispatcher",
        "crisis-notifier",
        "crisis-projections",
        "crisis-sms-sandbox",
    }
    assert compose["services"]["sms-sandbox"]["profiles"] == ["sandbox"], "the sandbox must not start by default"
    assert (COMPOSE.parent / "Dockerfile").exists()


def test_env_files_set_only_known_settings() -> None:
    known = settings_variables()
    for path in (DEPLOY / "env" / "production.env.example", DEPLOY / "compose" / "compose.env.example"):
        for variable in re.findall(r"^(CRISIS_[A-Z0-9_]+)=", path.read_text(), re.MULTILINE):
            assert variable in known, f"{path.name}: unknown setting {variable}"


def systemd_units() -> list[Path]:
    return sorted(SYSTEMD.glob("*.service"))


def read_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(path.read_text())
    return unit


def test_systemd_units_run_console_scripts_hardened_and_restarted() -> None:
    scripts = console_scripts()
    crisis_units = [p for p in systemd_units() if p.name.startswith("crisis-")]
    started = set()
    for path in crisis_units:
        service = read_unit(path)["Service"]
        program = Path(service["ExecStart"].split()[0]).name
        assert program in scripts, f"{path.name}: {program} is no console script"
        started.add(program)
        assert service["EnvironmentFile"] == "/etc/crisis/crisis.env"
    # every service and the sandbox; `make run` and the one-off key rotation tool are not units
    assert started == scripts - {"crisis-run", "crisis-rotate-key"}
    for path in systemd_units():
        service = read_unit(path)["Service"]
        assert service["Restart"] == "always", path.name
        assert service["NoNewPrivileges"] == "yes", path.name
        assert service["ProtectSystem"] == "strict", path.name
        assert service["ReadWritePaths"], path.name


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd checks that programs exist: point them at existing ones, keep every other line as written."""
    for path in [*systemd_units(), SYSTEMD / "crisis.target"]:
        text = re.sub(r"/opt/crisis/venv/bin/[\w-]+", "/bin/true", path.read_text())
        text = text.replace("/usr/local/bin/nats-server", nats_server_binary())
        (tmp_path / path.name).write_text(text)
    units = sorted(str(p) for p in tmp_path.iterdir())
    checked = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    problems = [line for line in checked.stderr.splitlines() if str(tmp_path) in line]
    assert checked.returncode == 0 and not problems, checked.stderr


def nats_configs(tmp_path: Path) -> list[Path]:
    """Each node's file (deploy/nats/n*.conf) and the Kubernetes ConfigMap's config."""
    nodes = sorted((DEPLOY / "nats").glob("n[0-9].conf"))
    config_map = next(d for d in k8s_documents() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "nats-config")
    k8s_conf = tmp_path / "k8s-nats.conf"
    k8s_conf.write_text(config_map["data"]["nats.conf"])
    return [*nodes, k8s_conf]


def test_nats_cluster_configs_pass_nats_server_check(tmp_path: Path) -> None:
    configs = nats_configs(tmp_path)
    assert [p.name for p in configs[:3]] == ["n1.conf", "n2.conf", "n3.conf"]
    environment = os.environ | NATS_ENV
    for config in configs:
        checked = subprocess.run(
            [nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True, timeout=30, env=environment
        )
        assert checked.returncode == 0, f"{config.name}: {checked.stderr}"
    names = {re.search(r"server_name: (\S+)", p.read_text())[1] for p in configs[:3]}
    assert names == {"crisis-n1", "crisis-n2", "crisis-n3"}
    for text in ((DEPLOY / "nats" / "nats-cluster.conf").read_text(), configs[3].read_text()):
        assert len(re.findall(r"^\s*nats-route://", text, re.MULTILINE)) == 3
        assert re.search(r"^\s*cipher: \w+", text, re.MULTILINE), "JetStream must be encrypted at rest"


def test_nats_config_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in NATS_ENV}
    checked = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(DEPLOY / "nats" / "n1.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        env=environment,
    )
    assert checked.returncode != 0
    assert "NATS_JETSTREAM_KEY" in checked.stderr


def test_make_upgrades_setuptools_with_pip_and_the_build_uses_a_current_one() -> None:
    recipe = (ROOT / "Makefile").read_text().split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    [upgrade] = [line for line in recipe.splitlines() if "--upgrade" in line]
    assert upgrade.split("--upgrade", 1)[1].split() == ["pip", "setuptools"]
    assert recipe.index(upgrade) < recipe.index("-e '.[dev]'")  # before the project is installed
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # an SPDX string: setuptools 77+ warns about (and will refuse) the old {text = ...} table
    assert isinstance(pyproject["project"]["license"], str)
    assert any(re.fullmatch(r"setuptools>=(7[7-9]|[89]\d)(\.\d+)*", r) for r in pyproject["build-system"]["requires"])


def test_the_embedded_nats_config_is_private_and_passes_nats_server_check(tmp_path: Path) -> None:
    server = EmbeddedNatsServer(tmp_path / "nats", encryption_key="generated-key", user="crisis", password="generated")
    config = server._private_config()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    checked = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr
    assert re.search(r"authorization \{\s+user: \"crisis\"\s+password: \"generated\"", config.read_text())
