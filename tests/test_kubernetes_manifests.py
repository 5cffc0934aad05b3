"""deploy/kubernetes/: valid against the Kubernetes schemas (offline), and in step with the service."""
from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from service.settings import PACKAGE_DIR, documented_settings

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = kubernetes_validate.latest_version()


def manifests() -> dict[str, dict]:
    documents = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            documents[document["kind"]] = document
    return documents


def policies_configmap() -> dict:
    """What `kubectl create configmap mecasermin-policies --from-file=service/policy/policies/` makes."""
    folder = PACKAGE_DIR / "policy" / "policies"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mecasermin-policies"},
            "data": {path.name: path.read_text() for path in sorted(folder.iterdir()) if path.is_file()}}


@pytest.mark.parametrize("kind", ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret"])
def test_each_manifest_is_valid_against_the_kubernetes_schema(kind):
    kubernetes_validate.validate(manifests()[kind], KUBERNETES_VERSION, strict=True)


def test_the_policies_configmap_is_valid():
    kubernetes_validate.validate(policies_configmap(), KUBERNETES_VERSION, strict=True)


def test_a_wrong_manifest_is_refused():
    broken = manifests()["Deployment"]
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = {"not": "a port"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_deployment_matches_the_service(app):
    documents = manifests()
    pod = documents["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez" in routes
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" in routes
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] and not container["securityContext"]["allowPrivilegeEscalation"]

    settings = {env for env, _, _ in documented_settings()} | {"PROMETHEUS_MULTIPROC_DIR"}
    env = {item["name"]: item for item in container["env"]}
    assert set(env) <= settings, set(env) - settings
    secret = documents["Secret"]
    from_secret = {item["valueFrom"]["secretKeyRef"]["key"] for item in env.values() if "valueFrom" in item}
    assert from_secret == {"database-url", "audit-hash-key"} and from_secret < set(secret["stringData"])
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["policies"]["configMap"]["name"] == policies_configmap()["metadata"]["name"]
    assert volumes["trusted-issuers"]["secret"]["secretName"] == secret["metadata"]["name"]

    labels = pod["metadata"]["labels"]
    assert documents["Service"]["spec"]["selector"].items() <= labels.items()
    assert documents["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert documents["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == documents["Deployment"]["metadata"]["name"]
