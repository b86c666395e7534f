"""Listeners and connections: framing, ordering, limits. Knows nothing of Pulsar."""
