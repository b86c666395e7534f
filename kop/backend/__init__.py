"""The Pulsar side. The only package that imports pulsar or calls Pulsar's admin API."""
