"""Container, compose and Kubernetes manifests: schema-valid, least-privilege, in step with code.

Pure Python, so `uv sync` is all it needs: a small kustomize renders compose/kubernetes
(resources, namespace, labels, generators with kustomize's own name hashes, images, name
references), and JSON Schemas vendored from PyPI packages (tests/unit/schemas/README.md)
validate the Kubernetes objects and compose.yaml. The rest are the promises the manifests make.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import prometheus_client.metrics
import pytest
import yaml

from config.settings import Settings, hash_api_key
from contracts import topology as names
from workers.runtime import discovery
from workers.runtime.topology import build_plan

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
KUBERNETES = COMPOSE / "kubernetes"
SCHEMAS = Path(__file__).with_name("schemas")
DEFINITIONS = ROOT / "config/rabbitmq/definitions.json"
WORKERS = discovery.worker_names()
SERVICES = tuple(s.name for s in discovery.services())
QUEUE_SCALED = tuple(s.name for s in discovery.workers() if not s.http)
API_SERVING = tuple(s.name for s in discovery.workers() if s.http)
# The thresholds of `warren scale` (`workers/ops/autoscale.py`) that the ScaledObjects repeat.
SCALING = {"target": "100", "min": 1, "max": 4, "scale_down_window_s": 60}
# The exchanges each service's outbox publishes to (besides retries, delays and dead letters).
PUBLISHES = {s.name: {names.exchange_for(m) for m in s.sends} for s in discovery.services()}
CRD_KINDS = {"keda.sh/v1alpha1/ScaledObject", "keda.sh/v1alpha1/TriggerAuthentication"}
CRD_KINDS |= {"rabbitmq.com/v1beta1/RabbitmqCluster"}
OPERATOR_PLUGINS = {"rabbitmq_management", "rabbitmq_prometheus", "rabbitmq_peer_discovery_k8s"}
PLUGINS = {"rabbitmq_management", "rabbitmq_prometheus", "rabbitmq_shovel"}
PLUGINS |= {"rabbitmq_shovel_management"}


# A small kustomize ---------------------------------------------------------------------------


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as kustomize reads them: `#` comments, values taken literally."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return dict(line.split("=", 1) for line in lines if not line.startswith("#"))


def kustomize_name(obj: dict[str, Any]) -> str:
    """The generated name: kustomize's hash of kind, type and data (api/hasher).

    Kustomize 5 hashes the generated object before it has a name, so the name hashes as "".
    """
    meta = {"kind": obj["kind"], "name": "", "data": obj["data"]}
    if obj["kind"] == "Secret":
        meta["type"] = obj["type"]
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    suffix = digest.hexdigest()[:10].translate(str.maketrans("013ae", "ghkmt"))
    return f"{obj['metadata']['name']}-{suffix}"


def kustomize_base64(value: str, width: int = 70) -> str:
    """Base64 as kustomize writes Secret data: longer values wrapped, each line ending in \\n."""
    encoded = base64.b64encode(value.encode()).decode()
    if len(encoded) < width:
        return encoded
    return "".join(encoded[i : i + width] + "\n" for i in range(0, len(encoded), width))


def generated(kind: str, generator: dict[str, Any], directory: Path) -> dict[str, Any]:
    """A ConfigMap or Secret from a generator's env files."""
    data: dict[str, str] = {}
    for env_file in generator.get("envs", []):
        data |= read_env_file(directory / env_file)
    if kind == "Secret":
        data = {key: kustomize_base64(value) for key, value in data.items()}
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": generator["name"]}}
    obj |= {"data": data, "type": "Opaque"} if kind == "Secret" else {"data": data}
    obj["metadata"]["name"] = kustomize_name(obj)
    return obj


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template's spec of a Deployment or Job."""
    return obj["spec"]["template"]["spec"] if obj["kind"] in ("Deployment", "Job") else None


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a workload (none for other kinds)."""
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]] if spec else []


def name_refs(obj: dict[str, Any], field_specs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every reference to a ConfigMap or Secret: its kind and the mapping holding `name`."""
    for container in containers(obj):
        for source in container.get("envFrom", []):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in source:
                    yield {"kind": kind, "at": source[key]}
        for var in container.get("env", []):
            for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                if key in var.get("valueFrom", {}):
                    yield {"kind": kind, "at": var["valueFrom"][key]}
    for spec in field_specs:
        if obj["kind"] == spec["kind"] and obj["apiVersion"].startswith(spec["group"] + "/"):
            *path, _ = spec["path"].split("/")
            holders: list[Any] = [obj]
            for step in path:
                holders = [h[step] for h in holders if step in h]
                holders = [i for h in holders for i in (h if isinstance(h, list) else [h])]
            yield from ({"kind": "Secret", "at": holder} for holder in holders)


def render_kustomization(directory: Path) -> list[dict[str, Any]]:
    """What `kubectl kustomize` renders for the features our base uses."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects = [doc for name in spec["resources"] for doc in yaml_documents(directory / name)]
    renamed = {}
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for generator in spec.get(key, []):
            objects.append(generated(kind, generator, directory))
            renamed[kind, generator["name"]] = objects[-1]["metadata"]["name"]
    field_specs = [
        fs
        for config in spec.get("configurations", [])
        for ref in yaml.safe_load((directory / config).read_text())["nameReference"]
        for fs in ref["fieldSpecs"]
    ]
    labels = {k: v for group in spec.get("labels", []) for k, v in group["pairs"].items()}
    images = {image["name"]: image for image in spec.get("images", [])}
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(labels)
        if obj["kind"] != "Namespace":
            obj["metadata"]["namespace"] = spec["namespace"]
        for ref in name_refs(obj, field_specs):
            ref["at"]["name"] = renamed.get((ref["kind"], ref["at"]["name"]), ref["at"]["name"])
        for container in containers(obj):
            if image := images.get(container["image"]):
                container["image"] = f"{image['newName']}:{image['newTag']}"
    return objects


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render_kustomization(KUBERNETES)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of this kind whose name is `name` (or its generated form)."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def container_env(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The environment a container sees: its ConfigMaps, then its own variables."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= find(objects, "ConfigMap", source["configMapRef"]["name"])["data"]
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            encoded = find(objects, "Secret", ref["name"])["data"][ref["key"]]
            env[var["name"]] = base64.b64decode(encoded).decode()
    return env


# Kubernetes -----------------------------------------------------------------------------------


def test_every_builtin_object_is_valid_against_the_strict_kubernetes_schema(objects):
    bundle = json.loads((SCHEMAS / "kubernetes-1.32.0-strict.json").read_text())
    for obj in objects:
        kind = f"{obj['apiVersion']}/{obj['kind']}"
        if kind in CRD_KINDS:
            continue
        assert kind in bundle["x-kinds"], f"{kind} has no vendored schema; add it (README.md)"
        schema = {"$defs": bundle["$defs"], "$ref": f"#/$defs/{bundle['x-kinds'][kind]}"}
        jsonschema.Draft202012Validator(schema).validate(obj)


def test_every_reference_names_an_object_and_key_that_exist(objects):
    for obj in objects:
        for container in containers(obj):
            container_env(objects, container)  # finds every ConfigMap, Secret and key
    for scaled in (o for o in objects if o["kind"] == "ScaledObject"):
        find(objects, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
        auth = scaled["spec"]["triggers"][0]["authenticationRef"]["name"]
        for ref in find(objects, "TriggerAuthentication", auth)["spec"]["secretTargetRef"]:
            assert ref["key"] in find(objects, "Secret", ref["name"])["data"]


@pytest.mark.parametrize("worker", QUEUE_SCALED)
def test_each_worker_scales_on_its_own_queue_with_the_autoscaler_thresholds(objects, worker):
    scaled = find(objects, "ScaledObject", f"warren-{worker}")["spec"]
    (trigger,) = scaled["triggers"]
    assert scaled["scaleTargetRef"]["name"] == f"warren-{worker}"
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"] == {
        "protocol": "http",
        "mode": "QueueLength",
        "value": SCALING["target"],
        "queueName": discovery.service(worker).subscription.queue,
        "vhostName": "warren",
    }
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (
        SCALING["min"],
        SCALING["max"],
    )
    behavior = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == SCALING["scale_down_window_s"]
    assert "replicas" not in find(objects, "Deployment", f"warren-{worker}")["spec"]


@pytest.mark.parametrize("worker", API_SERVING)
def test_a_worker_with_an_http_api_has_fixed_replicas_a_service_and_the_gateway_its_urls(
    objects, worker
):
    """Not scaled by queue depth; its API reachable by the gateway through a Service."""
    names = {o["metadata"]["name"] for o in objects if o["kind"] == "ScaledObject"}
    assert f"warren-{worker}" not in names
    deployment = find(objects, "Deployment", f"warren-{worker}")
    assert deployment["spec"]["replicas"] >= 2
    (container,) = containers(deployment)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    env = container_env(objects, container)
    assert (env["WARREN_HTTP_HOST"], env["WARREN_HTTP_PORT"]) == ("0.0.0.0", str(ports["api"]))
    service = find(objects, "Service", f"warren-{worker}")["spec"]
    assert service["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["ports"][0]["targetPort"] == "api"
    gateway = container_env(objects, containers(find(objects, "Deployment", "warren-gateway"))[0])
    port = service["ports"][0]["port"]
    assert gateway[f"WARREN_{worker.upper()}_API_URLS"] == f"http://warren-{worker}:{port}"


@pytest.mark.parametrize("service", SERVICES)
def test_pods_outlast_their_drain_and_probe_the_right_endpoints(objects, service):
    deployment = find(objects, "Deployment", f"warren-{service}")
    (container,) = containers(deployment)
    env = container_env(objects, container)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    if service == "gateway":
        assert container["args"] == ["gateway"]
        assert ports["http"] == int(env["WARREN_GATEWAY_PORT"])
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
        busy = (
            pre_stop + float(env["WARREN_MAX_LONG_POLL_S"]) + float(env["WARREN_DRAIN_TIMEOUT_S"])
        )
        assert grace > busy
    else:
        assert container["args"] == ["worker", service]
        assert ports["metrics"] == int(env["WARREN_METRICS_PORT"])
        assert env["WARREN_METRICS_HOST"] == "0.0.0.0"  # probed and scraped from off the pod
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
        assert grace > float(env["WARREN_DRAIN_TIMEOUT_S"])


def test_every_workload_runs_as_non_root_from_a_pinned_image(objects):
    workloads = [o for o in objects if pod_spec(o)]
    assert {o["kind"] for o in workloads} == {"Deployment", "Job"}
    for obj in workloads:
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        for container in containers(obj):
            assert_pinned(container["image"])
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "limits" in container["resources"] and "requests" in container["resources"]
    assert_pinned(find(objects, "RabbitmqCluster", "warren-rabbitmq")["spec"]["image"])


def test_the_topology_job_applies_the_topology_as_the_topology_user(objects):
    (container,) = containers(find(objects, "Job", "warren-topology"))
    assert container["args"] == ["topology", "apply"]
    assert urlsplit(container_env(objects, container)["WARREN_BROKER_URL"]).username == "topology"


def test_the_production_broker_has_three_nodes_and_the_plugins(objects):
    spec = find(objects, "RabbitmqCluster", "warren-rabbitmq")["spec"]
    assert spec["replicas"] == 3
    assert OPERATOR_PLUGINS | set(spec["rabbitmq"]["additionalPlugins"]) >= PLUGINS


def workload_envs(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The environment of every Warren container, by workload name."""
    return {
        obj["metadata"]["name"]: container_env(objects, container)
        for obj in objects
        for container in containers(obj)
    }


def test_placeholder_secrets_are_refused_by_production_settings(objects, monkeypatch):
    for env in workload_envs(objects).values():
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(ValueError, match="refusing to start with WARREN_ENV=production"):
            Settings(_env_file=None)
        for key in env:
            monkeypatch.delenv(key)


def test_with_real_secrets_each_service_gets_its_own_users_and_the_warren_vhost(
    objects, monkeypatch
):
    for workload, env in workload_envs(objects).items():
        for key, value in env.items():
            real = re.sub(r"(?<=:)changeme(?=@)|^changeme$", "Str0ng-secret-value", value)
            if key == "WARREN_API_KEYS":
                real = json.dumps([f"client:{hash_api_key('a real key')}"])
            monkeypatch.setenv(key, real)
        settings = Settings(_env_file=None)
        service = workload.removeprefix("warren-")
        assert settings.vhost == "warren"
        assert urlsplit(settings.broker_url.get_secret_value()).username == service
        if service in SERVICES:
            assert urlsplit(settings.database_url(service)).username == f"warren_{service}"
        for key in env:
            monkeypatch.delenv(key)


def assert_pinned(image: str) -> None:
    """An image names a tag (or digest) and that tag is not `latest`."""
    tag = image.rsplit("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    assert (tag and tag != "latest") or "@sha256:" in image, f"{image} is not pinned"


# RabbitMQ definitions ------------------------------------------------------------------------


def definitions() -> dict[str, Any]:
    return json.loads(DEFINITIONS.read_text())


def permissions(user: str) -> dict[str, str]:
    (entry,) = (p for p in definitions()["permissions"] if p["user"] == user)
    assert entry["vhost"] == "warren"
    return entry


def allowed(user: str, permission: str, resource: str) -> bool:
    """RabbitMQ's check: the regex matches anywhere in the name (anchors are the file's job)."""
    return re.search(permissions(user)[permission], resource) is not None


def own_slice_needs(service: str) -> set[tuple[str, str]]:
    """What a service does on the broker: declare and bind its own queues, consume, publish.

    By the access-control table: queue.declare needs configure on the queue (plus write on its
    dead-letter exchange and read on the queue), queue.bind write on the queue and read on the
    exchange, basic.consume read on the queue, basic.publish write on the exchange.
    """
    settings, sub = Settings(_env_file=None), discovery.service(service).subscription
    mine = {sub.queue, names.dead_letter_queue(sub.queue)}
    plan = build_plan(settings, [sub])
    # a paused process shows itself by a queue of its own (workers/runtime/edge.py)
    needs = {("read", sub.queue), ("configure", names.pause_marker(sub.queue, "w@host:1"))}
    for queue in (q for q in plan.queues if q.name in mine):
        needs.add(("configure", queue.name))
        if dlx := queue.arguments.get("x-dead-letter-exchange"):
            needs |= {("write", dlx), ("read", queue.name)}
    for binding in (b for b in plan.bindings if b.destination in mine):
        needs |= {("write", binding.destination), ("read", binding.source)}
    retry = {names.DEAD_LETTER_EXCHANGE, names.DELAY_DELIVERY_EXCHANGE}
    retry |= {names.delay_exchange(level) for level in range(settings.delay_levels)}
    return needs | {("write", exchange) for exchange in retry | PUBLISHES[service]}


def test_definitions_hold_one_passwordless_user_per_service_and_no_guest():
    users = {u["name"]: u for u in definitions()["users"]}
    assert set(users) == {*SERVICES, "topology", "operator", "monitoring"}
    assert all(user["password_hash"] == "" for user in users.values())
    assert users["operator"]["tags"] == ["administrator"]
    assert users["monitoring"]["tags"] == ["monitoring"]
    assert all(users[name]["tags"] == [] for name in (*SERVICES, "topology"))
    assert [v["name"] for v in definitions()["vhosts"]] == ["warren"]
    assert definitions()["policies"] == []
    assert {p["user"] for p in definitions()["permissions"]} == set(users)
    for entry in (p for p in definitions()["permissions"] if p["user"] != "operator"):
        for permission in ("configure", "write", "read"):
            # RabbitMQ searches: an unanchored pattern grants every name that contains it.
            assert re.fullmatch(r"\^.*\$", entry[permission]), (entry["user"], permission)


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_may_do_what_it_does_and_nothing_to_other_services_queues(service):
    for permission, resource in own_slice_needs(service):
        assert allowed(service, permission, resource), f"{service} needs {permission} {resource}"
    settings = Settings(_env_file=None)
    for other in (s for s in discovery.subscriptions() if s.service != service):
        for queue in (other.queue, names.dead_letter_queue(other.queue)):
            for permission in ("configure", "write", "read"):
                assert not allowed(service, permission, queue), f"{service} {permission} {queue}"
    for exchange in {e.name for e in build_plan(settings).exchanges} - {
        r for p, r in own_slice_needs(service) if p == "write"
    }:
        assert not allowed(service, "write", exchange), f"{service} may publish to {exchange}"


def test_the_topology_user_may_declare_the_whole_plan_and_monitoring_nothing():
    plan = build_plan(Settings(_env_file=None))
    needs = {("configure", e.name) for e in plan.exchanges}
    for queue in plan.queues:
        needs |= {("configure", queue.name), ("read", queue.name)}
        if dlx := queue.arguments.get("x-dead-letter-exchange"):
            needs.add(("write", dlx))
    needs |= {("write", b.destination) for b in plan.bindings}
    needs |= {("read", b.source) for b in plan.bindings}
    assert all(allowed("topology", permission, resource) for permission, resource in needs)
    resources = {name for _, name in needs}
    for permission in ("configure", "write", "read"):
        assert not any(allowed("monitoring", permission, name) for name in resources)


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rendered_definitions_carry_rabbitmq_hashes_of_the_configured_passwords():
    render = load_script(COMPOSE / "rabbitmq/render_definitions.py")
    # The worked example of RabbitMQ's "Credentials and Passwords" guide.
    example = render.password_hash("test12", bytes.fromhex("908DC60A"))
    assert example == "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
    env = {
        render.password_variable(u["name"]): f"pw-{u['name']}-0123456789"
        for u in definitions()["users"]
    }
    for user in render.render(definitions(), env)["users"]:
        salted = base64.b64decode(user["password_hash"])
        expected = render.password_hash(env[render.password_variable(user["name"])], salted[:4])
        assert user["password_hash"] == expected
    with pytest.raises(SystemExit, match="RABBITMQ_ORDERS_PASSWORD"):
        render.render(definitions(), env | {"RABBITMQ_ORDERS_PASSWORD": "guest"})


# Compose --------------------------------------------------------------------------------------

INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:[?-])(?P<arg>[^}]*))?\}")
SECRET = re.compile(r"\$\{[A-Z0-9_]+:\?[^}]+\}")


def compose_file() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / "compose.yaml").read_text())


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}` substitution."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        value = env.get(match["name"], "")
        if match["op"] == ":?" and not value:
            raise KeyError(f"{match['name']}: {match['arg']}")
        return value or (match["arg"] if match["op"] == ":-" else "")

    return INTERPOLATION.sub(substitute, node)


def required_variables() -> set[str]:
    text = json.dumps(compose_file())  # values only: compose does not interpolate comments
    return {m["name"] for m in INTERPOLATION.finditer(text) if m["op"] == ":?"}


def test_compose_file_is_valid_against_the_compose_specification():
    env = dict.fromkeys(required_variables(), "Str0ng-secret-value")
    document = interpolate(compose_file(), env)
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    with pytest.raises(KeyError, match=r"compose/\.env"):
        interpolate(compose_file(), {})


def test_new_env_writes_every_variable_compose_requires():
    new_env = load_script(COMPOSE / "new_env.py")
    lines = [line for line in new_env.env_lines("the-key") if not line.startswith("#")]
    values = dict(line.split("=", 1) for line in lines)
    assert set(values) == required_variables()
    assert len(set(values.values())) == len(values), "every secret is drawn on its own"
    api_keys = json.loads(values["WARREN_API_KEYS"].strip("'"))
    assert api_keys == [f"{new_env.API_CLIENT}:{hash_api_key('the-key')}"]


def test_every_compose_secret_is_required_never_defaulted():
    for service in compose_file()["services"].values():
        for key, value in service.get("environment", {}).items():
            if "PASSWORD" in key or (key == "WARREN_API_KEYS" and value != "[]"):
                assert SECRET.fullmatch(value), f"{key} must be ${{VAR:?message}}"
            if isinstance(value, str) and "://" in value and "@" in value:
                password = value.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
                assert SECRET.fullmatch(password), f"{key} must take its password from ${{VAR:?}}"


def test_compose_services_have_healthchecks_and_wait_on_conditions():
    services = compose_file()["services"]
    one_shot = {name for name, s in services.items() if s.get("restart") == "no"}
    assert {"rabbitmq-definitions", "topology"} <= one_shot
    for name, service in services.items():
        if name not in one_shot:
            assert service["healthcheck"]["test"][0] == "CMD", f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully" if dependency in one_shot else "service_healthy"
            )
            assert condition == {"condition": expected}, f"{name} -> {dependency}"
        if "image" in service:
            assert_pinned(interpolate(service["image"], {}))


@pytest.mark.parametrize("service", SERVICES)
def test_compose_runs_each_service_as_its_own_users_in_production(service):
    spec = compose_file()["services"][service]
    env = interpolate(spec["environment"], dict.fromkeys(required_variables(), "Str0ng-secret"))
    users = {u["name"] for u in definitions()["users"]}
    broker_user = urlsplit(env["WARREN_BROKER_URL"]).username
    assert broker_user == service and broker_user in users
    assert urlsplit(env["WARREN_BROKER_URL"]).path == "/warren"
    assert urlsplit(env[f"WARREN_{service.upper()}_DB_URL"]).username == f"warren_{service}"
    assert env["WARREN_ENV"] == "production"
    drain = float(env["WARREN_DRAIN_TIMEOUT_S"])
    if service == "gateway":
        assert spec["command"] == ["gateway"]
        drain += Settings(_env_file=None).max_long_poll_s
    else:
        assert spec["command"] == ["worker", service]
        assert f"127.0.0.1:{env['WARREN_METRICS_PORT']}/metrics" in spec["healthcheck"]["test"][-1]
        assert env["WARREN_METRICS_HOST"] == "0.0.0.0"  # Prometheus scrapes from its container
    assert int(spec["stop_grace_period"].removesuffix("s")) > drain


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target path -> source of a compose service's volumes."""
    return {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}


def rabbitmq_conf() -> dict[str, str]:
    """`key = value` lines of compose/rabbitmq/rabbitmq.conf."""
    lines = (COMPOSE / "rabbitmq/rabbitmq.conf").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_rabbitmq_imports_the_rendered_definitions_with_the_plugins():
    services = compose_file()["services"]
    renderer, broker = services["rabbitmq-definitions"], services["rabbitmq"]
    source, rendered = (Path(arg) for arg in renderer["command"][-2:])
    assert mounts(renderer)[str(source)] == "../config/rabbitmq/definitions.json"
    assert mounts(renderer)[str(rendered.parent)] == "rabbitmq-definitions"
    loaded = Path(rabbitmq_conf()["definitions.local.path"])
    assert (mounts(broker)[str(loaded.parent)], loaded.name) == (
        "rabbitmq-definitions",
        rendered.name,
    )
    assert mounts(broker)["/etc/rabbitmq/rabbitmq.conf"] == "./rabbitmq/rabbitmq.conf"
    assert mounts(broker)["/etc/rabbitmq/enabled_plugins"] == "./rabbitmq/enabled_plugins"
    plugins = (COMPOSE / "rabbitmq/enabled_plugins").read_text().strip().strip("[].").split(",")
    assert set(plugins) == PLUGINS


def test_prometheus_scrapes_the_gateway_every_worker_and_rabbitmq():
    config = yaml.safe_load((COMPOSE / "prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {
        f"{name}:{sd['port']}"
        for job in jobs.values()
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    targets |= {
        t for job in jobs.values() for sc in job.get("static_configs", []) for t in sc["targets"]
    }
    environments = compose_file()["services"]
    metrics_port = environments[WORKERS[0]]["environment"]["WARREN_METRICS_PORT"]
    assert {f"{w}:{metrics_port}" for w in WORKERS} | {"gateway:8000", "rabbitmq:15692"} <= targets
    assert jobs["rabbitmq"]["metrics_path"] == "/metrics/per-object"


def metric_names() -> set[str]:
    """Every sample name our processes can expose."""
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    found = set()
    for module in ("workers.runtime.metrics", "outbox.metrics", "gateway.metrics"):
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, prometheus_client.metrics.MetricWrapperBase):
                (family,) = value.describe()
                found |= {family.name + suffix for suffix in suffixes[family.type]}
    return found


def test_the_dashboard_shows_metrics_that_exist():
    dashboard = json.loads((COMPOSE / "grafana/dashboards/warren.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\bwarren_[a-z_]+", expr)}
    assert used and used <= metric_names(), used - metric_names()
    for family in ("handled", "retries", "dead_lettered", "handler_seconds", "outbox_pending"):
        assert any(family in name for name in used), family
    assert any("rabbitmq_queue_messages_ready" in expr for expr in expressions)
    provider = yaml.safe_load((COMPOSE / "grafana/provisioning/dashboards/warren.yaml").read_text())
    grafana = mounts(compose_file()["services"]["grafana"])
    assert grafana[provider["providers"][0]["options"]["path"]] == "./grafana/dashboards"


# The image ------------------------------------------------------------------------------------


def test_the_image_is_built_from_the_lock_and_runs_warren_as_non_root():
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev --no-editable" in dockerfile
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    assert 'ENTRYPOINT ["warren"]' in dockerfile
    for image in re.findall(r"^ARG \w+_IMAGE=(\S+)$", dockerfile, re.M):
        assert_pinned(image)
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    packages = packages["targets"]["wheel"]["packages"]
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in ("pyproject.toml", "uv.lock", "README.md", *(f"{p}/" for p in packages)):
        assert f"!{needed}" in ignore, f".dockerignore leaves out {needed}"
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, f"the image leaves out {package}"


def test_kubectl_kustomize_renders_exactly_what_these_checks_validate(objects):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is needed to render compose/kubernetes (it ships with this machine image;"
            " elsewhere install it from your distribution or the Kubernetes project)"
        )
    rendered = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    by_kubectl = sorted(
        json.dumps(doc, sort_keys=True) for doc in yaml.safe_load_all(rendered) if doc
    )
    assert by_kubectl == sorted(json.dumps(doc, sort_keys=True) for doc in objects)
