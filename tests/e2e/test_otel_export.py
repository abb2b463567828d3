"""OpenTelemetry log export of audit records (OTEL_EXPORTER_OTLP_* environment variables):
collectors started here decode what the proxy sends with the official OTLP schema (Python
modules protoc generates from third_party/opentelemetry-proto). http/protobuf and grpc, gzip on
and off, headers, TLS with a test CA (and a client certificate), the record shape next to the
JSON audit line, an unknown protocol refused at start-up, retries on 503, a collector that is
down (requests still served, drops counted in /metrics) and comes back (export resumes), and the
flush at shutdown."""
import datetime
import socket
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness import certs, clients, yamlgen
from harness.otlp_collector import GrpcCollector, HttpCollector
from harness.proxy import run_binary
from test_metrics import scrape, value

FAST = {"OTEL_BLRP_SCHEDULE_DELAY": "50"}


def otel_env(endpoint, **extra):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **FAST}
    env.update(extra)
    return env


def get(proxy, upstream, path, host="allowed.test"):
    return clients.curl(f"http://127.0.0.1:{proxy.http_port}{path}",
                        headers=[f"Host: {host}:{upstream.port}"])


def by_path(records, path):
    return [r for r in records if r["attributes"].get("path") == path]


@pytest.fixture
def http_collector():
    c = HttpCollector().start()
    yield c
    c.stop()


def test_http_protobuf_record_shape_next_to_the_json_line(proxy_factory, http_upstream, http_collector):
    env = otel_env(f"http://127.0.0.1:{http_collector.port}",
                   OTEL_EXPORTER_OTLP_HEADERS="x-api-key=k%3D1, x-tenant = blue",
                   OTEL_SERVICE_NAME="egress-test",
                   OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci,team=a%20b")
    p = proxy_factory.start(env=env)
    assert get(p, http_upstream, "/echo/otel-ok?token=never-logged").http_code == 200
    assert get(p, http_upstream, "/echo/otel-denied", host="denied.test").http_code == 403
    recs = http_collector.wait_records(lambda rs: len(rs) >= 2)
    assert len(recs) == 2, recs
    json_lines = p.wait_audit(2)

    export = http_collector.exports[0]
    assert export["path"] == "/v1/logs"
    assert export["headers"]["content-type"] == "application/x-protobuf"
    assert "content-encoding" not in export["headers"]
    assert export["headers"]["x-api-key"] == "k=1" and export["headers"]["x-tenant"] == "blue"

    ok, denied = by_path(recs, "/echo/otel-ok")[0], by_path(recs, "/echo/otel-denied")[0]
    for r in (ok, denied):
        assert r["resource"] == {"service.name": "egress-test", "deployment.environment": "ci", "team": "a b"}
        assert r["scope"] == "iron-proxy/audit"
        assert r["body"] == "request"
        assert r["observed_time_unix_nano"] >= r["time_unix_nano"] > 0
        kinds = r["attribute_kinds"]
        assert kinds["status_code"] == "int_value" and kinds["duration_ms"] == "double_value"
        assert "tunnel" not in r["attributes"]
    assert (ok["severity_number"], ok["severity_text"]) == (9, "INFO")
    assert (denied["severity_number"], denied["severity_text"]) == (13, "WARN")
    assert denied["attributes"]["rejected_by"] == "allowlist"
    assert denied["attributes"]["status_code"] == 403

    # The same facts as the JSON line, flat; the query string is in neither.
    [line] = [rec for rec in json_lines if rec["audit"]["path"] == "/echo/otel-ok"]
    a = ok["attributes"]
    for key in ("host", "method", "path", "remote_addr", "sni", "mode", "action", "status_code"):
        assert a[key] == line["audit"][key], key
    assert a["request_transforms"] == [
        {"name": t["name"], "action": t["action"], "duration_ms": pytest.approx(t["duration_ms"], abs=1e-6)}
        for t in line["request_transforms"]]
    assert "never-logged" not in repr(recs)


def test_http_protobuf_gzip(proxy_factory, http_upstream, http_collector):
    p = proxy_factory.start(env=otel_env(f"http://127.0.0.1:{http_collector.port}/",
                                         OTEL_EXPORTER_OTLP_COMPRESSION="gzip"))
    for i in range(5):
        assert get(p, http_upstream, f"/echo/gz{i}").http_code == 200
    recs = http_collector.wait_records(lambda rs: len(rs) >= 5)
    assert sorted(r["attributes"]["path"] for r in recs) == [f"/echo/gz{i}" for i in range(5)]
    assert all(e["headers"].get("content-encoding") == "gzip" for e in http_collector.exports)
    assert http_collector.exports[0]["path"] == "/v1/logs"


def test_logs_endpoint_is_used_as_is_and_batches_fill(proxy_factory, http_upstream, http_collector):
    env = {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://127.0.0.1:{http_collector.port}/custom/ingest",
           "OTEL_BLRP_SCHEDULE_DELAY": "60000", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "3"}
    p = proxy_factory.start(env=env)
    for i in range(6):
        assert get(p, http_upstream, f"/echo/b{i}").http_code == 200
    # Full batches go at once, long before the 60 s schedule delay.
    recs = http_collector.wait_records(lambda rs: len(rs) >= 6)
    assert len(recs) == 6
    assert {e["path"] for e in http_collector.exports} == {"/custom/ingest"}
    assert all(len(e["request"].resource_logs[0].scope_logs[0].log_records) == 3 for e in http_collector.exports)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_grpc_export(proxy_factory, http_upstream, compression):
    collector = GrpcCollector().start()
    try:
        p = proxy_factory.start(env=otel_env(f"http://127.0.0.1:{collector.port}",
                                             OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
                                             OTEL_EXPORTER_OTLP_COMPRESSION=compression,
                                             OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer otel-token"))
        for i in range(3):
            assert get(p, http_upstream, f"/echo/grpc{i}").http_code == 200
        assert get(p, http_upstream, "/echo/grpc-denied", host="denied.test").http_code == 403
        recs = collector.wait_records(lambda rs: len(rs) >= 4)
        assert len(recs) == 4, recs
        denied = by_path(recs, "/echo/grpc-denied")[0]
        assert denied["severity_text"] == "WARN" and denied["attributes"]["rejected_by"] == "allowlist"
        assert recs[0]["scope"] == "iron-proxy/audit"
        assert recs[0]["resource"]["service.name"] == "iron-proxy"
        assert collector.exports[0]["headers"]["authorization"] == "Bearer otel-token"
    finally:
        collector.stop()


def make_client_cert(outdir, ca, ca_key):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "iron-proxy-otel-client")]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pair = certs.CertPair(outdir / "otel-client.crt", outdir / "otel-client.key", cert)
    certs._write_cert(pair.cert_path, cert)
    certs._write_key(pair.key_path, key)
    return pair


def test_https_with_test_ca_and_client_certificate(proxy_factory, http_upstream, upstream_pki, tmp_path):
    client_ca, client_ca_key = certs.make_ca(tmp_path / "client-ca", "otel client CA")
    client = make_client_cert(tmp_path, client_ca, client_ca_key)
    collector = HttpCollector(cert=upstream_pki.server.cert_path, key=upstream_pki.server.key_path,
                              client_ca=client_ca.cert_path).start()
    try:
        env = otel_env(f"https://localhost:{collector.port}",
                       OTEL_EXPORTER_OTLP_CERTIFICATE=str(upstream_pki.ca_path),
                       OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=str(client.cert_path),
                       OTEL_EXPORTER_OTLP_CLIENT_KEY=str(client.key_path))
        p = proxy_factory.start(env=env)
        assert get(p, http_upstream, "/echo/tls").http_code == 200
        recs = collector.wait_records()
        assert [r["attributes"]["path"] for r in recs] == ["/echo/tls"]
        subject = dict(x[0] for x in collector.exports[0]["client_cert"]["subject"])
        assert subject["commonName"] == "iron-proxy-otel-client"
    finally:
        collector.stop()


def test_https_collector_not_trusted_drops_and_serves(proxy_factory, http_upstream, upstream_pki):
    collector = HttpCollector(cert=upstream_pki.server.cert_path, key=upstream_pki.server.key_path).start()
    try:
        env = otel_env(f"https://localhost:{collector.port}", OTEL_BLRP_EXPORT_TIMEOUT="300")
        p = proxy_factory.start(env=env)  # no OTEL_EXPORTER_OTLP_CERTIFICATE: the test CA is unknown
        assert get(p, http_upstream, "/echo/untrusted").http_code == 200
        s = wait_metric(p, lambda s: value(s, "iron_proxy_otel_records_dropped_total") >= 1)
        assert value(s, "iron_proxy_otel_records_dropped_total") >= 1
        assert collector.records() == []
    finally:
        collector.stop()


def test_grpc_over_tls(proxy_factory, http_upstream, upstream_pki):
    collector = GrpcCollector(cert=upstream_pki.server.cert_path, key=upstream_pki.server.key_path).start()
    try:
        env = otel_env(f"https://localhost:{collector.port}", OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
                       OTEL_EXPORTER_OTLP_CERTIFICATE=str(upstream_pki.ca_path))
        p = proxy_factory.start(env=env)
        assert get(p, http_upstream, "/echo/grpc-tls").http_code == 200
        recs = collector.wait_records()
        assert [r["attributes"]["path"] for r in recs] == ["/echo/grpc-tls"]
    finally:
        collector.stop()


@pytest.mark.parametrize("protocol", ["http/json", "thrift"])
def test_unknown_protocol_is_a_startup_error_naming_it(proxy_factory, protocol):
    cfg = proxy_factory.config()
    path = proxy_factory.bed.workdir / "otel-bad.yaml"
    path.write_text(yamlgen.dump(cfg))
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    for args in (["-config", str(path)], ["-check", "-config", str(path)]):
        cp = run_binary(args, env=env, timeout=20)
        assert cp.returncode != 0, cp
        assert f'"{protocol}"' in cp.stderr and "OTEL_EXPORTER_OTLP_PROTOCOL" in cp.stderr, cp.stderr
        assert "iron-proxy ready" not in cp.stderr


def test_retries_on_503_then_delivers(proxy_factory, http_upstream, http_collector):
    http_collector.fail_next(2, status=503, retry_after=0)
    p = proxy_factory.start(env=otel_env(f"http://127.0.0.1:{http_collector.port}"))
    assert get(p, http_upstream, "/echo/retried").http_code == 200
    recs = http_collector.wait_records()
    assert [r["attributes"]["path"] for r in recs] == ["/echo/retried"]
    assert value(scrape(p), "iron_proxy_otel_records_dropped_total") == 0
    assert value(scrape(p), "iron_proxy_otel_records_exported_total") == 1


def wait_metric(p, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        s = scrape(p)
        if predicate(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_collector_down_then_back(proxy_factory, http_upstream, protocol):
    port = free_port()  # nothing listens there yet
    env = otel_env(f"http://127.0.0.1:{port}", OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                   OTEL_BLRP_MAX_QUEUE_SIZE="4", OTEL_BLRP_MAX_EXPORT_BATCH_SIZE="2",
                   OTEL_BLRP_EXPORT_TIMEOUT="500", OTEL_EXPORTER_OTLP_TIMEOUT="300")
    p = proxy_factory.start(env=env)
    started = time.monotonic()
    for i in range(40):
        assert get(p, http_upstream, f"/echo/down{i}").http_code == 200
    assert time.monotonic() - started < 30  # requests never waited for the collector
    s = wait_metric(p, lambda s: value(s, "iron_proxy_otel_records_dropped_total") >= 30)
    assert value(s, "iron_proxy_otel_records_dropped_total") >= 30
    assert p.wait_stderr("otel export dropped records", timeout=5)
    assert p.stderr_text().count("otel export dropped records") == 1  # at most once a minute

    collector = (HttpCollector(port=port) if protocol == "http/protobuf" else GrpcCollector(port=port)).start()
    try:
        # The queue still holds records from the outage: they go first, once a retry connects.
        assert collector.wait_records(timeout=15), "export did not resume"
        assert get(p, http_upstream, "/echo/back").http_code == 200
        recs = collector.wait_records(lambda rs: by_path(rs, "/echo/back"), timeout=15)
        assert by_path(recs, "/echo/back"), recs
        assert value(scrape(p), "iron_proxy_otel_records_exported_total") >= 1
        assert len(p.wait_audit(41)) == 41  # the JSON lines never depended on the collector
    finally:
        collector.stop()


def test_queued_records_are_flushed_at_shutdown(proxy_factory, http_upstream, http_collector):
    env = otel_env(f"http://127.0.0.1:{http_collector.port}", OTEL_BLRP_SCHEDULE_DELAY="60000")
    p = proxy_factory.start(env=env)
    for i in range(3):
        assert get(p, http_upstream, f"/echo/last{i}").http_code == 200
    p.wait_audit(3)
    assert http_collector.records() == []  # the schedule delay has not passed
    assert p.stop() == 0
    assert sorted(r["attributes"]["path"] for r in http_collector.records()) == [f"/echo/last{i}" for i in range(3)]


def test_off_without_endpoint(proxy_factory, http_upstream):
    p = proxy_factory.start(env={"OTEL_EXPORTER_OTLP_HEADERS": "a=b", "OTEL_SERVICE_NAME": "x"})
    assert get(p, http_upstream, "/echo/off").http_code == 200
    assert "otel export" not in p.stderr_text()
