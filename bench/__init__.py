"""Switchboard's benchmark: fan-out latency and CPU per delivery, saturation, idle
connection memory, write throughput, and a bare-socket reference (see README.md)."""
