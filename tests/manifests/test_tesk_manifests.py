"""The TESK manifests validate against the Kubernetes schemas of the pinned minor and give TESK what it needs."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TESK_DIR = ROOT / "k8sresources" / "tesk"
SETUP_SCRIPT = ROOT / "scripts" / "k8s-node-setup.sh"
TESK_NODEPORT = 31567  # the app's TESK_NODEPORT default
NAMESPACE = "tesk"


def script_default(name: str) -> str:
    """A default from the top of k8s-node-setup.sh (`NAME="${NAME:-value}"`)."""
    match = re.search(rf'^{name}="\$\{{{name}:-([^}}]*)\}}"', SETUP_SCRIPT.read_text(), re.MULTILINE)
    assert match, f"{name} default not found in {SETUP_SCRIPT}"
    return match.group(1)


# The schemas of the minor the node bootstrap installs (kubernetes-validate 1.37.0 ships 1.25 to 1.37).
K8S_SCHEMA_VERSION = f"{script_default('K8S_VERSION')}.0"


def load_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(TESK_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


DOCS = load_documents()


def find(kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for _, d in DOCS if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def test_schema_version_is_shipped_by_kubernetes_validate() -> None:
    schema_dir = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    assert (schema_dir / f"v{K8S_SCHEMA_VERSION}-local-strict").is_dir()


@pytest.mark.parametrize("doc", [d for _, d in DOCS], ids=[f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in DOCS])
def test_manifest_validates_strictly(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_SCHEMA_VERSION, strict=True)


def test_everything_lives_in_the_tesk_namespace_which_is_applied_first() -> None:
    first_file, first = DOCS[0]
    assert (first["kind"], first["metadata"]["name"]) == ("Namespace", NAMESPACE), first_file
    for _, doc in DOCS[1:]:
        assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]


# What the TESK chart's taskmaster Role grants (elixir-cloud-aai/TESK,
# deployment/charts/tesk/templates/common/taskmaster-rbac.yaml): TESK needs all of it
# (pods, pods/log, jobs, PVCs, configmaps) and least privilege allows nothing more.
TESK_CHART_GRANTS: dict[tuple[str, str], set[str]] = {
    ("", "pods"): {"list", "patch"},
    ("", "persistentvolumeclaims"): {"create", "delete", "get"},
    ("", "configmaps"): {"create", "delete", "get"},
    ("", "pods/log"): {"get", "list"},
    ("", "pods/status"): {"get", "list"},
    ("batch", "jobs"): {"create", "delete", "get", "list", "patch"},
}


def grants(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """Verbs per (API group, resource), whatever way the rules group them."""
    result: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                result.setdefault((group, resource), set()).update(rule["verbs"])
    return result


def test_role_grants_exactly_what_the_tesk_chart_grants() -> None:
    actual = grants(find("Role", "taskmaster"))
    missing = {k: sorted(v - actual.get(k, set())) for k, v in TESK_CHART_GRANTS.items() if v - actual.get(k, set())}
    extra = {k: sorted(v - TESK_CHART_GRANTS.get(k, set())) for k, v in actual.items()
             if v - TESK_CHART_GRANTS.get(k, set())}
    assert not missing, f"TESK needs {missing}"
    assert not extra, f"more than the TESK chart grants: {extra}"


def test_role_is_namespaced_and_grants_no_wildcards() -> None:
    assert not [d for _, d in DOCS if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    for rule in find("Role", "taskmaster")["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]


def test_binding_ties_the_role_to_the_service_account_the_api_runs_as() -> None:
    binding = find("RoleBinding")
    deployment = find("Deployment", "tesk-api")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "taskmaster"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    find("ServiceAccount", account)


def api_container() -> dict[str, Any]:
    return find("Deployment", "tesk-api")["spec"]["template"]["spec"]["containers"][0]


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_api_image_is_pinned() -> None:
    image = api_container()["image"]
    assert re.fullmatch(r"docker\.io/elixircloud/tesk-api:\d+\.\d+\.\d+", image), image
    variables = env(api_container())
    for key in ("TESK_API_TASKMASTER_IMAGE_VERSION", "TESK_API_TASKMASTER_FILER_IMAGE_VERSION"):
        assert re.fullmatch(r"v\d+\.\d+\.\d+", variables[key]), key


def test_api_has_resource_requests_and_a_readiness_probe_on_service_info() -> None:
    container = api_container()
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/ga4gh/tes/v1/service-info"
    assert env(container)["OPENAPI_TASKEXECUTIONSERVICE_BASE_PATH"] == "/ga4gh/tes/v1"


def test_service_info_config_map_is_mounted_where_the_api_reads_it() -> None:
    config = find("ConfigMap", "service-info-config")
    info = yaml.safe_load(config["data"]["service-info.yaml"])
    assert info["type"] == {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}
    mount = api_container()["volumeMounts"][0]
    location = env(api_container())["TESK_API_SERVICE_INFO_LOCATION"]
    assert location == f"file://{mount['mountPath']}/service-info.yaml"
    volumes = find("Deployment", "tesk-api")["spec"]["template"]["spec"]["volumes"]
    assert {"name": mount["name"], "configMap": {"name": "service-info-config"}} in volumes


def test_task_volumes_use_the_storage_class_the_bootstrap_installs() -> None:
    assert env(api_container())["TESK_API_TASKMASTER_ENVIRONMENT_STORAGE_CLASS_NAME"] == script_default("STORAGE_CLASS")


def test_service_exposes_the_authenticating_proxy_on_the_fixed_node_port() -> None:
    service = find("Service", "tesk-api")
    assert service["spec"]["type"] == "NodePort"
    (port,) = service["spec"]["ports"]
    assert port["nodePort"] == TESK_NODEPORT
    assert service["spec"]["selector"] == find("Deployment", "tesk-auth")["spec"]["selector"]["matchLabels"]
    proxy = find("Deployment", "tesk-auth")["spec"]["template"]["spec"]["containers"][0]
    assert port["targetPort"] in [p["name"] for p in proxy["ports"] if p["containerPort"] == 8080]


def labels_selected_by(service: dict[str, Any]) -> dict[str, str]:
    return service["spec"]["selector"]


def test_nothing_reaches_tesk_api_from_outside_the_cluster_but_through_the_proxy() -> None:
    api_labels = find("Deployment", "tesk-api")["spec"]["template"]["metadata"]["labels"]
    exposing = [d for _, d in DOCS if d["kind"] == "Service"
                and all(api_labels.get(k) == v for k, v in labels_selected_by(d).items())]
    assert [d["metadata"]["name"] for d in exposing] == ["tesk-api-backend"]
    assert exposing[0]["spec"]["type"] == "ClusterIP"
    policy = find("NetworkPolicy", "tesk-api-from-proxy-only")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app": "tesk-api"}
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app": "tesk-auth"}}}]


def proxy_config() -> str:
    return find("ConfigMap", "tesk-auth-config")["data"]["tesk-auth.conf.template"]


def test_the_proxy_demands_the_bearer_token_from_the_secret_and_forwards_to_the_backend() -> None:
    from batchk8s.tes import auth

    pod = find("Deployment", "tesk-auth")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    token_env = {e["name"]: e for e in container["env"]}["TES_TOKEN"]
    assert token_env["valueFrom"]["secretKeyRef"] == {"name": auth.SECRET, "key": auth.SECRET_KEY}
    assert "optional" not in token_env["valueFrom"]["secretKeyRef"]  # no Secret, no proxy: fails closed
    assert auth.NAMESPACE == NAMESPACE
    config = proxy_config()
    assert '"Bearer ${TES_TOKEN}" 1;' in config and "default 0;" in config
    assert re.search(r"if \(\$tes_authorized = 0\) \{[^}]*return 401", config)
    backend = find("Service", "tesk-api-backend")
    assert f"proxy_pass http://{backend['metadata']['name']}.{NAMESPACE}.svc:{backend['spec']['ports'][0]['port']};" \
        in config
    assert 'proxy_set_header Authorization "";' in config  # the credential stops at the proxy
    # The only unauthenticated answer is the probe port, which no Service exposes.
    services = [d for _, d in DOCS if d["kind"] == "Service"]
    assert all(port.get("targetPort") != "health" and port.get("port") != 8081
               for service in services for port in service["spec"]["ports"])
    # envsubst touches TES_TOKEN only, and a short or empty token stops the container.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NGINX_ENVSUBST_FILTER"] == "^TES_TOKEN$"
    assert '"${#TES_TOKEN}" -lt 32' in container["args"][0] and "exit 1" in container["args"][0]  # run in
    # tests/manifests/test_tesk_auth_proxy.py, with the real nginx serving the template
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False


def test_the_proxy_image_is_pinned() -> None:
    image = find("Deployment", "tesk-auth")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert re.fullmatch(r"docker\.io/nginxinc/nginx-unprivileged:\d+\.\d+-alpine", image)


def app_setting_default(name: str) -> Any:
    """The default of an app setting; a renamed or removed setting fails the consistency check it feeds."""
    from batchk8s import settings

    for spec in dataclasses.fields(settings.Settings):
        if name in spec.metadata.get("names", ()):
            return spec.default
    pytest.fail(f"batchk8s.settings declares no {name} setting: the manifests and scripts still use it")


def test_node_port_matches_the_app_setting_default() -> None:
    assert app_setting_default("TESK_NODEPORT") == TESK_NODEPORT


def test_kubernetes_version_matches_the_app_setting_default() -> None:
    assert app_setting_default("K8S_VERSION") == script_default("K8S_VERSION")
