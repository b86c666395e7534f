"""One module per Kafka API; each docstring names the key, the versions served and every deviation."""
