"""kop.config: defaults, precedence (defaults < TOML < KOP_* env < CLI overrides), one ConfigError
listing every problem."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kop import config
from kop.config import Config, ConfigError, load

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "kop.example.toml"


def write(tmp_path: Path, text: str, name: str = "kop.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def problems_of(excinfo) -> str:
    return "\n".join(excinfo.value.problems)


def test_defaults():
    cfg = load(env={})
    assert cfg == Config()
    assert (cfg.server.listen_host, cfg.server.listen_port) == ("127.0.0.1", 9092)
    assert cfg.pulsar.service_url == "pulsar://127.0.0.1:6650"
    assert cfg.pulsar.admin_url == "http://127.0.0.1:8080"
    assert (cfg.pulsar.tenant, cfg.pulsar.namespace) == ("public", "default")
    assert cfg.topics.entry_format == "pulsar"
    assert cfg.topics.auto_create is True
    assert cfg.topics.default_partitions == 1
    assert cfg.server.max_frame_size == 100 * 1024 * 1024
    assert cfg.log_level == "INFO"
    # advertised port 0 means "the listen port"
    assert cfg.advertised_port == 9092


def test_config_is_frozen():
    cfg = load(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.server.listen_port = 1  # type: ignore[misc]


def test_load_ignores_unrelated_environment():
    cfg = load(env={"HOME": "/root", "PATH": "/bin", "KAFKA_FOO": "1", "KOP": "x"})
    assert cfg == Config()


def test_load_ignores_kop_tooling_variables():
    cfg = load(env={"KOP_CACHE": "/tmp/c", "KOP_RUN_DIR": "/tmp/r", "KOP_PULSAR_FRESH": "1"})
    assert cfg == Config()


def test_toml_file(tmp_path):
    path = write(tmp_path, """
log_level = "debug"

[server]
listen_host = "0.0.0.0"
listen_port = 19092
advertised_host = "10.0.0.5"
advertised_port = 29092

[pulsar]
service_url = "pulsar+ssl://broker:6651"
admin_url = "https://broker:8443"
tenant = "t1"
namespace = "ns1"
operation_timeout_s = 5

[topics]
auto_create = false
default_partitions = 6
entry_format = "kafka"

[fetch]
max_readers = 10
""")
    cfg = load(path, env={})
    assert (cfg.server.listen_host, cfg.server.listen_port) == ("0.0.0.0", 19092)
    assert cfg.advertised_port == 29092
    assert cfg.server.advertised_host == "10.0.0.5"
    assert cfg.pulsar.service_url == "pulsar+ssl://broker:6651"
    assert cfg.pulsar.admin_url == "https://broker:8443"
    assert (cfg.pulsar.tenant, cfg.pulsar.namespace) == ("t1", "ns1")
    assert cfg.pulsar.operation_timeout_s == 5.0 and isinstance(cfg.pulsar.operation_timeout_s, float)
    assert cfg.topics == config.TopicsConfig(auto_create=False, default_partitions=6, entry_format="kafka")
    assert cfg.fetch.max_readers == 10
    assert cfg.log_level == "debug"
    # untouched keys keep their defaults
    assert cfg.server.node_id == -1  # derived from the advertised address
    assert cfg.fetch.reader_idle_s == 60.0


def test_env_variables(tmp_path):
    cfg = load(env={
        "KOP_SERVER_LISTEN_PORT": "19093",
        "KOP_SERVER_LISTEN_HOST": "0.0.0.0",
        "KOP_PULSAR_SERVICE_URL": "pulsar://other:6650",
        "KOP_PULSAR_OPERATION_TIMEOUT_S": "2.5",
        "KOP_TOPICS_AUTO_CREATE": "false",
        "KOP_TOPICS_ENTRY_FORMAT": "kafka",
        "KOP_FETCH_MAX_WAIT_CAP_MS": "1000",
        "KOP_LOG_LEVEL": "WARNING",
    })
    assert cfg.server.listen_port == 19093
    assert cfg.server.listen_host == "0.0.0.0"
    assert cfg.pulsar.service_url == "pulsar://other:6650"
    assert cfg.pulsar.operation_timeout_s == 2.5
    assert cfg.topics.auto_create is False
    assert cfg.topics.entry_format == "kafka"
    assert cfg.fetch.max_wait_cap_ms == 1000
    assert cfg.log_level == "WARNING"


@pytest.mark.parametrize("text, expected", [
    ("true", True), ("1", True), ("yes", True), ("TRUE", True), ("Yes", True),
    ("false", False), ("0", False), ("no", False), ("False", False),
])
def test_env_booleans(text, expected):
    assert load(env={"KOP_TOPICS_AUTO_CREATE": text}).topics.auto_create is expected


def test_precedence_defaults_toml_env_overrides(tmp_path):
    path = write(tmp_path, """
[server]
listen_port = 1001
node_id = 7
max_inflight_requests = 5

[pulsar]
tenant = "from-toml"
namespace = "from-toml"
""")
    # the file alone beats the defaults
    cfg = load(path, env={})
    assert (cfg.server.listen_port, cfg.server.node_id, cfg.pulsar.tenant) == (1001, 7, "from-toml")
    assert cfg.server.listen_host == "127.0.0.1"  # default where nobody says otherwise

    env = {"KOP_SERVER_LISTEN_PORT": "2002", "KOP_SERVER_NODE_ID": "8", "KOP_PULSAR_TENANT": "from-env"}
    cfg = load(path, env=env)
    assert (cfg.server.listen_port, cfg.server.node_id, cfg.pulsar.tenant) == (2002, 8, "from-env")
    assert cfg.pulsar.namespace == "from-toml"  # the env did not name it: the file still wins
    assert cfg.server.max_inflight_requests == 5

    cfg = load(path, env=env, overrides={"server.listen_port": 3003, "pulsar.tenant": "from-cli",
                                         "server.node_id": None, "log_level": "ERROR"})
    assert cfg.server.listen_port == 3003
    assert cfg.pulsar.tenant == "from-cli"
    assert cfg.server.node_id == 8  # an override of None (flag not given) changes nothing
    assert cfg.pulsar.namespace == "from-toml"
    assert cfg.log_level == "ERROR"


def test_overrides_beat_env_for_log_level():
    cfg = load(env={"KOP_LOG_LEVEL": "DEBUG"}, overrides={"log_level": "WARNING"})
    assert cfg.log_level == "WARNING"
    assert load(env={"KOP_LOG_LEVEL": "DEBUG"}, overrides={"log_level": None}).log_level == "DEBUG"


def test_overrides_without_file_or_env():
    cfg = load(env={}, overrides={"topics.entry_format": "kafka", "server.listen_port": 0})
    assert cfg.topics.entry_format == "kafka"
    assert cfg.server.listen_port == 0


def test_every_problem_reported_at_once(tmp_path):
    path = write(tmp_path, """
[server]
listen_port = 70000
no_such_key = 1
node_id = "zero"

[pulsar]
service_url = "http://not-pulsar:6650"
admin_url = "ftp://admin"
operation_timeout_s = "many"

[topics]
entry_format = "avro"
auto_create = "perhaps"

[bogus_section]
x = 1
""")
    env = {"KOP_FETCH_MAX_READERS": "lots", "KOP_NOSUCH_THING": "1", "KOP_SERVER_ADVERTISED_PORT": "-1",
           "KOP_FETCH_NOPE": "2"}
    with pytest.raises(ConfigError) as excinfo:
        load(path, env=env)
    problems = excinfo.value.problems
    text = problems_of(excinfo)

    def has(*needles: str) -> bool:
        return any(all(n in p for n in needles) for p in problems)

    assert has("bogus_section")                              # unknown section
    assert has("server.no_such_key")                         # unknown key (file)
    assert has("KOP_NOSUCH_THING")                           # unknown env setting (section)
    assert has("KOP_FETCH_NOPE", "fetch.nope")               # unknown env setting (key)
    assert has("node_id", "expected int", "'zero'")          # wrong types
    assert has("operation_timeout_s", "expected float")
    assert has("auto_create", "expected bool")
    assert has("KOP_FETCH_MAX_READERS", "expected int")
    assert has("topics.entry_format", "avro")                # bad entry format
    assert has("pulsar.service_url", "http://not-pulsar")    # bad URLs
    assert has("pulsar.admin_url", "ftp://admin")
    assert has("server.listen_port", "70000")                # bad ports
    assert has("server.advertised_port", "-1")
    assert len(problems) >= 13
    # the message lists them all too
    for problem in problems:
        assert problem in str(excinfo.value)
    assert "bogus_section" in text


def test_config_error_is_a_value_error_with_problems():
    err = ConfigError(["a", "b"])
    assert isinstance(err, ValueError)
    assert err.problems == ["a", "b"]
    assert "a" in str(err) and "b" in str(err)


@pytest.mark.parametrize("env, needle", [
    ({"KOP_SERVER_LISTEN_PORT": "65536"}, "server.listen_port"),
    ({"KOP_SERVER_MAX_FRAME_SIZE": "1023"}, "server.max_frame_size"),
    ({"KOP_SERVER_MAX_INFLIGHT_REQUESTS": "0"}, "server.max_inflight_requests"),
    ({"KOP_SERVER_MAX_CONNECTIONS": "0"}, "server.max_connections"),
    ({"KOP_SERVER_MAX_CONNECTIONS_PER_ADDRESS": "0"}, "server.max_connections_per_address"),
    ({"KOP_SERVER_QUEUED_MAX_REQUEST_BYTES": "1048576"}, "server.queued_max_request_bytes"),
    ({"KOP_SERVER_CONNECTIONS_MAX_IDLE_MS": "-1"}, "server.connections_max_idle_ms"),
    ({"KOP_TOPICS_DEFAULT_PARTITIONS": "0"}, "topics.default_partitions"),
    ({"KOP_TOPICS_DEFAULT_PARTITIONS": "10001"}, "topics.default_partitions"),
    ({"KOP_PULSAR_SYSTEM_NAMESPACE": "nonamespace"}, "pulsar.system_namespace"),
    ({"KOP_PULSAR_SYSTEM_NAMESPACE": "a/b/c"}, "pulsar.system_namespace"),
    ({"KOP_LOG_LEVEL": "TRACE"}, "log_level"),
    ({"KOP_TOPICS_ENTRY_FORMAT": "Pulsar"}, "topics.entry_format"),
    ({"KOP_PULSAR_ADMIN_URL": "127.0.0.1:8080"}, "pulsar.admin_url"),
    ({"KOP_PULSAR_SERVICE_URL": "127.0.0.1:6650"}, "pulsar.service_url"),
    ({"KOP_PULSAR_OPERATION_TIMEOUT_S": "soon"}, "KOP_PULSAR_OPERATION_TIMEOUT_S"),
    ({"KOP_SERVER_NODE_ID": "-3"}, "server.node_id"),
    ({"KOP_CLUSTER_REFRESH_INTERVAL_S": "0"}, "cluster.refresh_interval_s"),
    ({"KOP_CLUSTER_HANDOVER_DELAY_S": "-1"}, "cluster.handover_delay_s"),
])
def test_single_bad_values(env, needle):
    with pytest.raises(ConfigError) as excinfo:
        load(env=env)
    assert any(needle in p for p in excinfo.value.problems), excinfo.value.problems


@pytest.mark.parametrize("env", [
    {"KOP_SERVER_LISTEN_PORT": "0"},
    {"KOP_SERVER_LISTEN_PORT": "65535"},
    {"KOP_SERVER_MAX_FRAME_SIZE": "1024"},
    {"KOP_TOPICS_DEFAULT_PARTITIONS": "10000"},
    {"KOP_LOG_LEVEL": "debug"},
    {"KOP_PULSAR_SERVICE_URL": "pulsar+ssl://h:6651"},
    {"KOP_PULSAR_ADMIN_URL": "https://h:8443"},
    {"KOP_SERVER_NODE_ID": "-1"},
    {"KOP_SERVER_NODE_ID": "2147483647"},
    {"KOP_CLUSTER_REFRESH_INTERVAL_S": "60"},
    {"KOP_CLUSTER_HANDOVER_DELAY_S": "0"},
])
def test_boundary_values_accepted(env):
    load(env=env)


def test_toml_wrong_types(tmp_path):
    path = write(tmp_path, """
[server]
listen_port = "9092x"
cluster_id = 5
[fetch]
reader_idle_s = "long"
""")
    with pytest.raises(ConfigError) as excinfo:
        load(path, env={})
    text = problems_of(excinfo)
    assert "listen_port" in text and "cluster_id" in text and "reader_idle_s" in text
    assert len(excinfo.value.problems) == 3


def test_toml_section_given_as_a_value(tmp_path):
    path = write(tmp_path, 'server = "yes"\n')
    with pytest.raises(ConfigError) as excinfo:
        load(path, env={})
    assert any("'server'" in p for p in excinfo.value.problems)


def test_toml_syntax_error(tmp_path):
    path = write(tmp_path, "[server\nlisten_port = \n")
    with pytest.raises(ConfigError) as excinfo:
        load(path, env={})
    assert excinfo.value.problems and path in excinfo.value.problems[0]


def test_missing_file(tmp_path):
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as excinfo:
        load(missing, env={})
    assert missing in excinfo.value.problems[0]


def test_toml_integer_string_for_int(tmp_path):
    # a numeric string is coerced to an int (so env variables and TOML agree)
    path = write(tmp_path, '[server]\nlisten_port = "19094"\n')
    assert load(path, env={}).server.listen_port == 19094


@pytest.mark.parametrize("text", ["--5", "²"])
def test_malformed_int_env_is_a_config_error(text):
    with pytest.raises(ConfigError) as excinfo:
        load(env={"KOP_SERVER_LISTEN_PORT": text, "KOP_TOPICS_ENTRY_FORMAT": "bad"})
    assert any("KOP_SERVER_LISTEN_PORT" in p for p in excinfo.value.problems)


def test_bool_for_float_is_a_wrong_type(tmp_path):
    path = write(tmp_path, "[pulsar]\noperation_timeout_s = true\n")
    with pytest.raises(ConfigError) as excinfo:
        load(path, env={})
    assert any("operation_timeout_s" in p for p in excinfo.value.problems)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_non_finite_float_is_refused(text):
    with pytest.raises(ConfigError) as excinfo:
        load(env={"KOP_PULSAR_OPERATION_TIMEOUT_S": text})
    assert any("KOP_PULSAR_OPERATION_TIMEOUT_S" in p for p in excinfo.value.problems)


def test_bool_for_int_is_a_wrong_type(tmp_path):
    path = write(tmp_path, "[server]\nnode_id = true\n")
    with pytest.raises(ConfigError) as excinfo:
        load(path, env={})
    assert any("node_id" in p and "expected int" in p for p in excinfo.value.problems)


def test_example_config_lists_every_key_with_its_default():
    import dataclasses
    import tomllib
    cfg = load(str(EXAMPLE), env={})
    assert cfg == Config(), "the example's values differ from the defaults"
    data = tomllib.loads(EXAMPLE.read_text())
    defaults = Config()
    for f in dataclasses.fields(Config):
        if dataclasses.is_dataclass(f.type) or f.name in data and isinstance(data[f.name], dict):
            section = data.get(f.name)
            assert section is not None, f"[{f.name}] is missing from {EXAMPLE.name}"
            wanted = {k.name for k in dataclasses.fields(getattr(defaults, f.name))}
            assert set(section) == wanted, f"[{f.name}]: missing {wanted - set(section)}, unknown {set(section) - wanted}"
        else:
            assert f.name in data, f"{f.name} is missing from {EXAMPLE.name}"
