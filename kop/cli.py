"""The ``kop`` command.

    kop serve [--config FILE] [--listen HOST:PORT] [--pulsar-url URL] [--admin-url URL] ...
    kop standalone [same options as serve]   a local Pulsar (started if none answers) plus kop
    kop check [same options as serve]        validate the configuration, then reach Pulsar
    kop scram add USER --file FILE --tenant TENANT [--namespace NS] --token-file JWT_FILE  (password on stdin)
    kop --version

Configuration precedence: defaults < the TOML file (--config) < KOP_* environment variables < flags.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__, logs, operate
from .config import ConfigError, load

EXAMPLES = """examples:
  kop serve                                   # 127.0.0.1:9092 -> pulsar://127.0.0.1:6650
  kop serve --config config/kop.example.toml
  KOP_TOPICS_ENTRY_FORMAT=kafka kop serve --listen 0.0.0.0:9092 --advertised-host 10.0.0.5
  kop serve --log-format json --metrics-listen 0.0.0.0:9404
  kop standalone                              # what `make run` runs: a local Pulsar, then kop
  kop check --config kop.toml                 # every bad key at once, then Pulsar's service and admin URLs
  echo 'alice-secret' | kop scram add alice --file scram-users.json --tenant acme --token-file acme.jwt

metrics and health: http://127.0.0.1:9404/metrics, /health, /ready (the [metrics] section)
"""


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML file (see config/kop.example.toml)")
    parser.add_argument("--listen", type=_host_port, help="HOST:PORT to listen on (server.listen_*)")
    parser.add_argument("--advertised-host", help="host Metadata tells clients (server.advertised_host)")
    parser.add_argument("--advertised-port", type=int, help="port Metadata tells clients (server.advertised_port)")
    parser.add_argument("--pulsar-url", help="Pulsar service URL (pulsar.service_url)")
    parser.add_argument("--admin-url", help="Pulsar admin URL (pulsar.admin_url)")
    parser.add_argument("--tenant", help="Pulsar tenant of Kafka topics (pulsar.tenant)")
    parser.add_argument("--namespace", help="Pulsar namespace of Kafka topics (pulsar.namespace)")
    parser.add_argument("--entry-format", choices=["pulsar", "kafka"], help="topics.entry_format")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--log-format", choices=["text", "json"], help="log_format: text lines or JSON objects")
    parser.add_argument("--metrics-listen", type=_host_port,
                        help="HOST:PORT of /metrics, /health and /ready (metrics.listen_*; port 0: any free one)")
    parser.add_argument("--workers", type=int,
                        help="gateway processes, each on its own core (server.workers; default 0: one per core)")
    parser.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kop", description="A Kafka wire-protocol gateway in front of Apache Pulsar.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"kop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "serve Kafka clients against a running Pulsar"),
                       ("standalone", "start a local Pulsar standalone (unless one answers), then serve; "
                                      "Ctrl-C stops both"),
                       ("check", "validate the configuration (every problem at once), then connect to "
                                 "Pulsar's service and admin URLs")):
        _serve_options(sub.add_parser(name, help=text, description=text, epilog=EXAMPLES,
                                      formatter_class=argparse.RawDescriptionHelpFormatter))
    scram = sub.add_parser("scram", help="manage the SCRAM users kop keeps (sasl.scram_credentials_file)")
    scram_sub = scram.add_subparsers(dest="scram_command", required=True)
    add = scram_sub.add_parser("add", help="add or replace a user; the password is read from stdin")
    add.add_argument("user")
    add.add_argument("--file", required=True, help="the SCRAM users file (JSON, written with mode 0600)")
    add.add_argument("--tenant", required=True, help="Pulsar tenant the user works in")
    add.add_argument("--namespace", default="default", help="Pulsar namespace (default: default)")
    add.add_argument("--token-file", required=True, help="file holding the Pulsar JWT kop uses for this user")
    add.add_argument("--iterations", type=int, default=8192, help="PBKDF2 iterations (at least 4096)")
    return parser


def _scram_add(args) -> int:
    from .server.scram_users import add_user
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("kop scram add: give the password on stdin", file=sys.stderr)
        return 2
    try:
        with open(args.token_file, encoding="utf-8") as fh:
            token = fh.read().strip()
        add_user(args.file, args.user, password, args.tenant, args.namespace, token, args.iterations)
    except (OSError, ValueError) as exc:
        print(f"kop scram add: {exc}", file=sys.stderr)
        return 2
    print(f"SCRAM-SHA-256 and SCRAM-SHA-512 credentials of {args.user!r} ({args.tenant}/{args.namespace}) "
          f"written to {args.file}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv_given = argv
    args = build_parser().parse_args(argv)
    if args.command == "scram":
        return _scram_add(args)
    overrides = {
        "server.listen_host": args.listen[0] if args.listen else None,
        "server.listen_port": args.listen[1] if args.listen else None,
        "server.advertised_host": args.advertised_host,
        "server.advertised_port": args.advertised_port,
        "pulsar.service_url": args.pulsar_url,
        "pulsar.admin_url": args.admin_url,
        "pulsar.tenant": args.tenant,
        "pulsar.namespace": args.namespace,
        "topics.entry_format": args.entry_format,
        "log_level": args.log_level,
        "log_format": args.log_format,
        "metrics.listen_host": args.metrics_listen[0] if args.metrics_listen else None,
        "metrics.listen_port": args.metrics_listen[1] if args.metrics_listen else None,
        "server.workers": args.workers,
    }
    try:
        config = load(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"kop: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_level, config.log_format)
    if args.command == "check":
        return operate.check(config)
    from .app import run
    from .workers import supervise, worker_count

    def serve(cfg) -> None:
        if args.worker_index is not None:
            run(cfg, args.worker_index)
        elif worker_count(cfg) > 1:
            # The workers run `serve` with the same arguments (standalone's Pulsar is already up).
            argv = ["serve", *(sys.argv[2:] if argv_given is None else argv_given[1:])]
            supervise(cfg, argv, worker_count(cfg))
        else:
            run(cfg)
    try:
        if args.command == "standalone":
            return operate.standalone(config, serve)
        serve(config)
    except Exception as exc:  # e.g. Pulsar unreachable, port in use: one clear line, exit 1
        logging.getLogger("kop").error("kop could not start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
