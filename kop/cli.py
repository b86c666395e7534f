"""The ``kop`` command.

    kop serve [--config FILE] [--listen HOST:PORT] [--pulsar-url URL] [--admin-url URL] ...
    kop --version
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .config import ConfigError, load

EXAMPLES = """examples:
  kop serve                                   # 127.0.0.1:9092 -> pulsar://127.0.0.1:6650
  kop serve --config config/kop.example.toml
  KOP_TOPICS_ENTRY_FORMAT=kafka kop serve --listen 0.0.0.0:9092 --advertised-host 10.0.0.5
"""


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kop", description="A Kafka wire-protocol gateway in front of Apache Pulsar.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"kop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve Kafka clients against a running Pulsar",
                           epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--config", help="TOML file (see config/kop.example.toml)")
    serve.add_argument("--listen", type=_host_port, help="HOST:PORT to listen on (server.listen_*)")
    serve.add_argument("--advertised-host", help="host Metadata tells clients (server.advertised_host)")
    serve.add_argument("--advertised-port", type=int, help="port Metadata tells clients (server.advertised_port)")
    serve.add_argument("--pulsar-url", help="Pulsar service URL (pulsar.service_url)")
    serve.add_argument("--admin-url", help="Pulsar admin URL (pulsar.admin_url)")
    serve.add_argument("--tenant", help="Pulsar tenant of Kafka topics (pulsar.tenant)")
    serve.add_argument("--namespace", help="Pulsar namespace of Kafka topics (pulsar.namespace)")
    serve.add_argument("--entry-format", choices=["pulsar", "kafka"], help="topics.entry_format")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    }
    try:
        config = load(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"kop: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per admin call is noise
    from .app import run
    try:
        run(config)
    except Exception as exc:  # e.g. Pulsar unreachable, port in use: one clear line, exit 1
        logging.getLogger("kop").error("kop could not start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
