"""runtime: containers run by runc, each monitored by its own conmon.

``Runtime`` creates, starts, signals, deletes and execs into containers and reaches their
stdio (``AttachStream``) and terminal size; ``ExitWatcher`` reports exits that conmon records
in the exit directory, also while nobody waits. Errors: ``OCIRuntimeError`` carries runc's own
message; state clashes are ``dockyard.errors.Conflict``, unknown containers ``NotFound``.
"""

from dockyard.runtime.attach import AttachStream
from dockyard.runtime.conmon import MonitorInfo
from dockyard.runtime.exec import ExecProcess
from dockyard.runtime.exits import ExitWatcher
from dockyard.runtime.runc import OCIRuntimeError
from dockyard.runtime.runtime import Runtime

__all__ = [
    "AttachStream",
    "ExecProcess",
    "ExitWatcher",
    "MonitorInfo",
    "OCIRuntimeError",
    "Runtime",
]
