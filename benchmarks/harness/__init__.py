"""The pieces `make bench` (benchmarks/bench.py) is built from: processes, systems, drivers, report."""
