#!/usr/bin/env python3
"""ns per record of the ``pulsar`` entry format's conversions, compiled codec against the pure-Python
path, for batches of 10, 100 and 1,000 records of 100 B values with a key and two headers.

    .venv/bin/python benchmarks/codec.py [--seconds 1.0]

produce: a Kafka batch (its bytes, as a Produce request carries it) to the Pulsar batch entry's
payload (kop/backend/batch_codec.entry_of). fetch: that payload back to a Kafka batch
(kafka_batch_of). The Python path is the reference and the fallback: per record, aiokafka's
record codec and convert.py, as kop did before the compiled codec (then also one pulsar-client
message object per record and, on fetch, one per message received, which this does not count).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kop.backend import batch_codec as bc  # noqa: E402
from kop.backend.wire import commands as cmd  # noqa: E402
from kop.protocol.records import Record, build_batch, parse_header  # noqa: E402


def _batch(count: int, compression: int = 0) -> bytes:
    records = [Record(i, 1_700_000_000_000 + i, f"key-{i}".encode(), b"v" * 100,
                      [("app", b"bench"), ("trace", f"{i:08d}".encode())]) for i in range(count)]
    return bytes(build_batch(records, compression=compression))


def _time(fn, seconds: float) -> float:
    """Seconds per call: the best of three rounds of about ``seconds`` / 3 each."""
    fn()
    best = float("inf")
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            fn()
            calls += 1
        best = min(best, elapsed / calls)
    return best


def measure(seconds: float) -> list[dict]:
    rows = []
    for count in (10, 100, 1000):
        batch = _batch(count)
        header = parse_header(batch)
        for implementation in ("python", "native"):
            bc.use(implementation)
            if bc.implementation() != implementation:
                rows.append({"records": count, "implementation": implementation, "note": "not built"})
                continue
            entry = bc.entry_of(header, batch, "pulsar")
            metadata = {**cmd.MessageMetadata.decode(entry.metadata), "publish_time": 1_700_000_000_000}
            produce = _time(lambda: bc.entry_of(header, batch, "pulsar"), seconds)
            fetch = _time(lambda: bc.kafka_batch_of(metadata, entry.payload, None, 0), seconds)
            rows.append({"records": count, "implementation": implementation,
                         "produce_ns_per_record": round(produce / count * 1e9),
                         "fetch_ns_per_record": round(fetch / count * 1e9)})
    bc.use("native")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per figure (default 1 s)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = measure(args.seconds)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'records':>8} {'path':<8} {'produce ns/record':>18} {'fetch ns/record':>16}")
    for row in rows:
        if "note" in row:
            print(f"{row['records']:>8} {row['implementation']:<8} {row['note']}")
            continue
        print(f"{row['records']:>8} {row['implementation']:<8} {row['produce_ns_per_record']:>18,} "
              f"{row['fetch_ns_per_record']:>16,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
