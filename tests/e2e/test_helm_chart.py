"""The Helm chart (charts/iron-proxy) rendered with default values and with each example values
file in charts/iron-proxy/ci/. No helm binary can be installed here (Debian 12 does not package
it), so tests/helm/render.go renders the chart with the engine Helm itself uses - Go's
text/template with the sprig library and Helm's include/tpl/toYaml/required - built from Debian's
golang-go and Go library packages. The merged values are validated against values.schema.json
(as `helm install` does, with python3-jsonschema), and the manifests are checked for structure:
probes, preStop and grace period, HPA, PDB, ServiceMonitor, NetworkPolicy, OTLP env, ports; the
rendered proxy.yaml passes `iron-proxy -check`."""
import json
import os
import shutil
import subprocess

import pytest
import yaml

from harness.paths import REPO_ROOT
from harness.proxy import run_binary

CHART = REPO_ROOT / "charts" / "iron-proxy"
EXAMPLES = sorted((CHART / "ci").glob("*.yaml"))

jsonschema = pytest.importorskip("jsonschema", reason="python3-jsonschema (scripts/install-deps.sh)")


@pytest.fixture(scope="module")
def renderer(tmp_path_factory):
    if not shutil.which("go"):
        pytest.skip("golang-go not installed (scripts/install-deps.sh installs it)")
    out = tmp_path_factory.mktemp("render") / "render"
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOFLAGS="",
               GOCACHE=os.environ.get("GOCACHE", os.path.expanduser("~/.cache/go-build")))
    cp = subprocess.run(["go", "build", "-o", str(out), str(REPO_ROOT / "tests/helm/render.go")],
                        capture_output=True, text=True, env=env, timeout=300, cwd=str(out.parent))
    assert cp.returncode == 0, cp.stderr
    return out


def render(renderer, tmp_path, *values_files):
    merged = tmp_path / "values.json"
    args = [str(renderer), "-chart", str(CHART), "-values-out", str(merged), "-notes-out", str(tmp_path / "NOTES")]
    for f in values_files:
        args += ["-f", str(f)]
    cp = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if cp.returncode != 0:
        return None, cp.stderr
    docs = [d for d in yaml.safe_load_all(cp.stdout) if d]
    values = json.loads(merged.read_text())
    jsonschema.validate(values, json.loads((CHART / "values.schema.json").read_text()))
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}, values


def by_kind(manifests, kind):
    return [d for (k, _), d in manifests.items() if k == kind]


def check_workload(manifests, values):
    [workload] = by_kind(manifests, values["kind"])
    pod = workload["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["port"] == "metrics"
    grace = pod["terminationGracePeriodSeconds"]
    pre = values["preStopSleepSeconds"]
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(pre)]
    assert grace >= pre + values["shutdownTimeoutSeconds"] + 2
    [cm] = by_kind(manifests, "ConfigMap")
    proxy_yaml = yaml.safe_load(cm["data"]["proxy.yaml"])
    assert proxy_yaml["proxy"]["shutdown_timeout"] == f"{values['shutdownTimeoutSeconds']}s"
    env = {e["name"]: e for e in c["env"]}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert env["IRON_METRICS_LISTEN"]["value"] == f":{ports['metrics']}"
    assert env["IRON_PROXY_HTTPS_LISTEN"]["value"] == f":{ports['https']}"
    [svc] = by_kind(manifests, "Service")
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == ports
    assert c["image"].endswith(":" + yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]) or \
        values["image"]["tag"]
    return workload, c, env, proxy_yaml


def check_proxy_yaml(proxy_yaml, tmp_path):
    """The rendered proxy.yaml passes -check, with a CA where the chart mounts it (paths rewritten)
    and the listen addresses the pod's IRON_*_LISTEN would give (loopback, port 0, here)."""
    cfg = dict(proxy_yaml)
    tls = dict(cfg.get("tls", {}))
    if tls.get("mode", "mitm") == "mitm":
        assert run_binary(["generate-ca", "-outdir", str(tmp_path / "tls"), "-alg", "ecdsa-p256"]).returncode == 0
        tls.update(ca_cert=str(tmp_path / "tls/ca.crt"), ca_key=str(tmp_path / "tls/ca.key"))
    cfg["tls"] = tls
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {"IRON_DNS_LISTEN": "127.0.0.1:0", "IRON_PROXY_HTTP_LISTEN": "127.0.0.1:0",
           "IRON_PROXY_HTTPS_LISTEN": "127.0.0.1:0", "IRON_PROXY_TUNNEL_LISTEN": "127.0.0.1:0",
           "IRON_METRICS_LISTEN": "127.0.0.1:0", "OPENAI_API_KEY": "x"}
    cp = run_binary(["-check", "-config", str(path)], env=env)
    assert cp.returncode == 0, cp


def test_default_values(renderer, tmp_path):
    manifests, values = render(renderer, tmp_path)
    assert manifests is not None, values
    assert set(k for k, _ in manifests) == {"ConfigMap", "Deployment", "Service", "ServiceAccount",
                                            "PodDisruptionBudget"}
    workload, c, env, proxy_yaml = check_workload(manifests, values)
    assert workload["spec"]["replicas"] == values["replicaCount"]
    vols = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    assert vols["ca"]["secret"]["secretName"] == "iron-proxy-ca"
    assert c["securityContext"]["capabilities"]["add"] == ["NET_BIND_SERVICE"]
    assert not any(n.startswith("OTEL_") for n in env)
    check_proxy_yaml(proxy_yaml, tmp_path)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_values(renderer, tmp_path, example):
    manifests, values = render(renderer, tmp_path, example)
    assert manifests is not None, values
    workload, c, env, proxy_yaml = check_workload(manifests, values)
    check_proxy_yaml(proxy_yaml, tmp_path)
    if values["kind"] == "DaemonSet":
        [svc] = by_kind(manifests, "Service")
        assert svc["spec"]["internalTrafficPolicy"] == "Local"
        assert "IRON_DNS_ENABLED" in env and not by_kind(manifests, "HorizontalPodAutoscaler")
    if values["autoscaling"]["enabled"]:
        [hpa] = by_kind(manifests, "HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]
        assert "replicas" not in workload["spec"], "the HPA owns the replica count"
    if values["podDisruptionBudget"]["enabled"]:
        assert by_kind(manifests, "PodDisruptionBudget")
    if values["metrics"]["serviceMonitor"]["enabled"]:
        [sm] = by_kind(manifests, "ServiceMonitor")
        assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    if values["otel"]["endpoint"]:
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == values["otel"]["endpoint"]
        assert "k8s.pod.name=$(K8S_POD_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
        names = [e["name"] for e in c["env"]]
        assert names.index("K8S_POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES"), "$(VAR) needs order"
    if values["networkPolicy"]["sandboxEgress"]["enabled"]:
        [np] = by_kind(manifests, "NetworkPolicy")
        assert np["spec"]["policyTypes"] == ["Egress"]
        [rule] = np["spec"]["egress"]
        assert rule["to"][0]["podSelector"]["matchLabels"] == workload["spec"]["selector"]["matchLabels"]
        allowed = {(p["port"], p["protocol"]) for p in rule["ports"]}
        assert (53, "UDP") in allowed and (53, "TCP") in allowed and (443, "TCP") in allowed
        assert all(p != 9090 for p, _ in allowed), "sandboxes never reach the metrics port"


@pytest.mark.parametrize("override, message", [
    ({"terminationGracePeriodSeconds": 10}, "terminationGracePeriodSeconds (10) must be at least"),
    ({"ca": {"existingSecret": ""}}, "requires ca.existingSecret"),
    ({"kind": "DaemonSet", "autoscaling": {"enabled": True}}, "autoscaling.enabled needs kind: Deployment"),
])
def test_unsafe_values_are_refused(renderer, tmp_path, override, message):
    f = tmp_path / "override.yaml"
    f.write_text(yaml.safe_dump(override))
    manifests, err = render(renderer, tmp_path, f)
    assert manifests is None and message in err, err


def test_schema_refuses_what_the_chart_cannot_do(tmp_path):
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for bad in ({"mode": "managed"}, {"kind": "StatefulSet"}, {"listeners": {**values["listeners"], "postgres": {}}},
                {"config": {**values["config"], "proxy": {"http_listen": ":80"}}}, {"replicas": 3}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**values, **bad}, schema)
