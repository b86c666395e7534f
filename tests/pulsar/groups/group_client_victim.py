"""A kafka-python group member in its own process, to be SIGKILLed by tests/pulsar/groups/test_group_clients.py.

Usage: python group_client_victim.py BOOTSTRAP GROUP TOPIC SESSION_TIMEOUT_MS
Prints ``ASSIGNED p,p,...`` / ``REVOKED p,p,...`` lines (flushed) as its assignment changes; it
consumes nothing itself (it only polls, which keeps it in the group) so a test can check exactly
what the survivor reads.
"""

from __future__ import annotations

import sys
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaError


def main() -> None:
    bootstrap, group, topic, session_timeout_ms = sys.argv[1:5]

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            print("REVOKED", ",".join(str(tp.partition) for tp in sorted(revoked)), flush=True)

        def on_partitions_assigned(self, assigned):
            print("ASSIGNED", ",".join(str(tp.partition) for tp in sorted(assigned)), flush=True)
            consumer.pause(*assigned)  # own them, read nothing

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id="victim",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             session_timeout_ms=int(session_timeout_ms), heartbeat_interval_ms=1000)
    consumer.subscribe([topic], listener=Listener())
    print("SUBSCRIBED", flush=True)
    while True:
        try:
            consumer.poll(timeout_ms=200)
        except KafkaError as exc:  # an error answer to JoinGroup: the next poll rejoins
            print("ERROR", repr(exc), flush=True)
            time.sleep(0.1)


if __name__ == "__main__":
    main()
