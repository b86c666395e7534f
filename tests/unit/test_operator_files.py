"""The operator files around the gateway, checked without Pulsar or a network: the Grafana dashboard
(config/grafana/dashboards/kop.json), Grafana's provisioning, Prometheus' scrape config and
docker-compose.yml, which ties them together.

A metric renamed in kop/ without the dashboard following fails here, as does a dashboard, datasource
or mount path changed in one file and not in the others."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "kop.json"
DATASOURCES = ROOT / "config" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = ROOT / "config" / "grafana" / "provisioning" / "dashboards" / "kop.yml"
PROMETHEUS = ROOT / "config" / "prometheus" / "prometheus.yml"
COMPOSE = ROOT / "docker-compose.yml"

# kop's metric families and their types. Mirrors kop/metrics.py (the REGISTRY's metrics) and
# kop/groups/lag.py (kop_groups and kop_group_members, collected at scrape time): add a metric there,
# add it here. test_known_families_mirror_the_source checks both directions.
KNOWN_FAMILIES: dict[str, str] = {
    "kop_build": "info",
    "kop_requests": "counter",
    "kop_response_errors": "counter",
    "kop_request_duration_seconds": "histogram",
    "kop_connections": "gauge",
    "kop_connections_opened": "counter",
    "kop_connections_refused": "counter",
    "kop_connections_closed_by_kop": "counter",
    "kop_produced_bytes": "counter",
    "kop_produced_records": "counter",
    "kop_produce_batches": "counter",
    "kop_fetched_bytes": "counter",
    "kop_fetched_records": "counter",
    "kop_resent_batches_skipped": "counter",
    "kop_fetch_waits": "counter",
    "kop_fetch_wait_seconds": "histogram",
    "kop_groups": "gauge",
    "kop_group_members": "gauge",
    "kop_group_rebalances": "counter",
    "kop_consumer_lag_messages": "gauge",
    "kop_consumer_lag_collect_seconds": "gauge",
    "kop_pulsar_errors": "counter",
    "kop_pulsar_reconnects": "counter",
    "kop_pulsar_readers": "gauge",
}
# Families that kop/groups/lag.py builds at scrape time (not registered in kop.metrics.REGISTRY).
SCRAPE_TIME_FAMILIES = {"kop_groups", "kop_group_members"}

# What prometheus_client puts on the wire for each type.
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"), "info": ("_info",)}
WIRE_NAMES = {family + suffix for family, kind in KNOWN_FAMILIES.items() for suffix in _SUFFIXES[kind]}

# The dashboard must at least show these.
REQUIRED_IN_DASHBOARD = {
    "kop_requests_total", "kop_request_duration_seconds_bucket", "kop_connections", "kop_produced_bytes_total",
    "kop_fetched_bytes_total", "kop_produce_batches_total", "kop_fetch_waits_total", "kop_groups",
    "kop_group_members", "kop_group_rebalances_total", "kop_consumer_lag_messages", "kop_pulsar_errors_total",
    "kop_pulsar_reconnects_total", "kop_pulsar_readers",
}
ROWS = ["Requests", "Connections", "Throughput", "Consumer groups", "Pulsar", "Process"]
METRIC_TOKEN = re.compile(r"\b(kop_[a-z_]+)")


def load_yaml(path: Path):
    with path.open() as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE)


def panels_of(dashboard: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def exprs_of(dashboard: dict) -> list[str]:
    return [t["expr"] for p in panels_of(dashboard) for t in p.get("targets", []) if t.get("expr")]


def variable(dashboard: dict, name: str) -> dict:
    matches = [v for v in dashboard["templating"]["list"] if v["name"] == name]
    assert len(matches) == 1, f"dashboard variable {name!r}: {len(matches)} found"
    return matches[0]


def volumes_of(service: dict) -> list[tuple[str, str]]:
    """(source, target) of a compose service's volumes, short (src:dst[:mode]) or long syntax."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            out.append((volume["source"], volume["target"]))
        else:
            source, target = volume.split(":")[:2]
            out.append((source, target))
    return out


def environment_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def container_ports(service: dict) -> set[int]:
    """Container ports a service publishes ("[ip:]host:container[/proto]" or long syntax)."""
    ports = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.add(int(port["target"]))
        else:
            ports.add(int(str(port).split(":")[-1].split("/")[0]))
    return ports


# --- the dashboard


def test_dashboard_identity(dashboard):
    assert dashboard["uid"] == "kop-overview"
    assert dashboard["title"] == "kop — Kafka gateway for Pulsar"
    assert dashboard["schemaVersion"] == 39
    assert dashboard["panels"]


def test_dashboard_panel_ids_are_unique(dashboard):
    ids = [p["id"] for p in panels_of(dashboard)]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_dashboard_rows(dashboard):
    assert [p["title"] for p in dashboard["panels"] if p["type"] == "row"] == ROWS


def test_every_panel_queries_something(dashboard):
    for panel in panels_of(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel.get("title"), panel["id"]
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys(), panel["title"]
        targets = panel.get("targets", [])
        assert targets, f"panel {panel['title']!r} has no target"
        for target in targets:
            where = f"panel {panel['title']!r}, target {target.get('refId')}"
            assert target.get("expr", "").strip(), f"{where}: no expr"
            assert "legendFormat" in target, panel["title"]
        # Queries go to the datasource the `datasource` variable picks.
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_panels_do_not_overlap(dashboard):
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:  # top level: what an uncollapsed dashboard lays out
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


def test_dashboard_covers_the_key_metrics(dashboard):
    used = {m for expr in exprs_of(dashboard) for m in METRIC_TOKEN.findall(expr)}
    assert REQUIRED_IN_DASHBOARD <= used, sorted(REQUIRED_IN_DASHBOARD - used)
    assert any("lag" in p["title"].lower() for p in panels_of(dashboard) if p["type"] != "row")


def test_dashboard_uses_only_metrics_kop_exports(dashboard):
    unknown = {m for expr in exprs_of(dashboard) for m in METRIC_TOKEN.findall(expr)} - WIRE_NAMES
    assert not unknown, f"metric names kop does not export (renamed?): {sorted(unknown)}"


def test_wire_names_follow_prometheus_client():
    assert "kop_requests_total" in WIRE_NAMES and "kop_requests" not in WIRE_NAMES
    assert {"kop_request_duration_seconds_bucket", "kop_request_duration_seconds_count"} <= WIRE_NAMES
    assert "kop_build_info" in WIRE_NAMES and "kop_connections" in WIRE_NAMES


def test_known_families_mirror_the_source():
    from kop import metrics

    registered = {}
    for family in metrics.REGISTRY.collect():
        if family.name.startswith("kop_"):
            registered[family.name] = family.type
    expected = {k: v for k, v in KNOWN_FAMILIES.items() if k not in SCRAPE_TIME_FAMILIES}
    assert registered == expected
    lag_source = (ROOT / "kop" / "groups" / "lag.py").read_text()
    for name in SCRAPE_TIME_FAMILIES:
        assert f'GaugeMetricFamily("{name}"' in lag_source, name


def test_dashboard_variables(dashboard):
    datasource = variable(dashboard, "datasource")
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    instance = variable(dashboard, "instance")
    assert instance["type"] == "query"
    assert instance["definition"] == "label_values(kop_build_info, instance)"
    assert instance["datasource"]["uid"] == "${datasource}"


# --- Grafana provisioning and Prometheus, against each other and docker-compose.yml


def test_datasource_is_the_dashboards_default(dashboard, compose):
    sources = load_yaml(DATASOURCES)["datasources"]
    assert len(sources) == 1
    source = sources[0]
    assert source["name"] == "Prometheus" and source["type"] == "prometheus" and source["isDefault"] is True
    assert source["uid"] == variable(dashboard, "datasource")["current"]["value"]
    host, port = re.fullmatch(r"http://([\w.-]+):(\d+)/?", source["url"]).groups()
    assert host in compose["services"], f"datasource url names {host!r}, not a compose service"
    assert int(port) in container_ports(compose["services"][host])


def test_dashboard_provider_loads_the_mounted_dashboards(compose):
    providers = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert len(providers) == 1 and providers[0]["type"] == "file"
    path = providers[0]["options"]["path"]
    grafana = compose["services"]["grafana"]
    mounts = dict((target, source) for source, target in volumes_of(grafana))
    assert (ROOT / mounts[path]).resolve() == DASHBOARD.parent
    assert (ROOT / mounts["/etc/grafana/provisioning"]).resolve() == DATASOURCES.parent.parent
    home = environment_of(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{path}/{DASHBOARD.name}"


def test_prometheus_scrapes_kop_and_pulsar(compose):
    config = load_yaml(PROMETHEUS)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"kop", "pulsar"}
    targets = {name: [t for sc in job["static_configs"] for t in sc["targets"]] for name, job in jobs.items()}
    assert targets["kop"] == ["kop:9404"]
    assert targets["pulsar"] == ["pulsar:8080"]
    assert jobs["kop"].get("scrape_interval", config["global"]["scrape_interval"]) == "15s"
    assert jobs["pulsar"].get("metrics_path", "/metrics") == "/metrics"
    # kop listens for the scrape on all interfaces, on the port scraped.
    command = compose["services"]["kop"]["command"]
    assert command[command.index("--metrics-listen") + 1] == "0.0.0.0:9404"
    mounts = dict((target, source) for source, target in volumes_of(compose["services"]["prometheus"]))
    assert (ROOT / mounts["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS


# --- docker-compose.yml


def test_compose_services_and_mounts(compose):
    services = compose["services"]
    assert {"pulsar", "kop", "prometheus", "grafana"} <= services.keys()
    assert 9404 in container_ports(services["kop"]) and 9092 in container_ports(services["kop"])
    assert "name" not in compose, "docker-compose 1.29 (Debian bookworm) rejects a top-level name:"
    for name, service in services.items():
        for source, _ in volumes_of(service):
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts {source}, absent from the repo"
            else:
                assert source in compose.get("volumes", {}), f"{name}: named volume {source} not declared"
        build = service.get("build")
        if build:
            build = {"context": build} if isinstance(build, str) else build
            context = ROOT / build.get("context", ".")
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), f"{name}: build {build}"


def compose_command() -> list[str] | None:
    if shutil.which("docker"):
        try:
            probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            probe = None
        if probe is not None and probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_validates():
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` (Compose v2) nor `docker-compose` (Compose v1) is installed")
    result = subprocess.run([*command, "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)} config -q: {result.stdout}{result.stderr}"


def test_compose_pulsar_has_every_override_of_the_test_pulsar(compose):
    """make run's Pulsar and compose's must agree (retention, entry index...), bar the loopback binding."""
    overrides = {}
    for line in (ROOT / "config/pulsar/standalone-overrides.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            overrides[key.strip()] = value.strip()
    env = compose["services"]["pulsar"]["environment"]
    in_compose = {k.removeprefix("PULSAR_PREFIX_"): str(v) for k, v in env.items() if k.startswith("PULSAR_PREFIX_")}
    for key in ("bindAddress", "advertisedAddress"):
        overrides.pop(key)
        in_compose.pop(key)
    assert in_compose == overrides
