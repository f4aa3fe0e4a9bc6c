"""The `make bench` harness: run wrk against servers pinned to a core, read /proc, analyse, report."""
