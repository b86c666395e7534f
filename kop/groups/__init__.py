"""Kafka consumer groups: the coordinator, its pure state table and the ``__offsets`` store."""
