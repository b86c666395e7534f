"""kop: a Kafka wire-protocol gateway in front of Apache Pulsar."""

__version__ = "0.1.0"
