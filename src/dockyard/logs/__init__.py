"""Container logs: conmon's k8s-file records read with Docker's json-file semantics."""

from dockyard.logs.k8sfile import (
    LogEntry,
    LogFollower,
    format_timestamp,
    parse_record,
    read_entries,
)

__all__ = ["LogEntry", "LogFollower", "format_timestamp", "parse_record", "read_entries"]
