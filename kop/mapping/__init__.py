"""Pure mappings between Kafka's and Pulsar's names and positions (no I/O)."""
