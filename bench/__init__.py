"""Switchboard's benchmark: fan-out latency and CPU per delivery, saturation, idle
connection memory, write throughput, and a bare-socket reference. bench/README.md says
how to run it, how it is laid out, and how to add a phase."""
