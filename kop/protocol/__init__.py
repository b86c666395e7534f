"""Kafka's wire protocol, sans-IO: bytes in, objects out. Imports neither asyncio, sockets nor pulsar."""
