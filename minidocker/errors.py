"""Errors the engine reports to its user, with docker's exit codes.

Layer: base (every layer raises them; the CLI turns them into one line and a code).

docker run exits 125 when the engine itself fails, 126 when the command cannot
be invoked and 127 when it is not found (docs.docker.com "docker run" exit
status).  The CLI prints ``str(error)`` on one line and exits with ``code``.
"""


class MinidockerError(Exception):
    code = 125


class NotFound(MinidockerError):
    """No such container or image."""


class Conflict(MinidockerError):
    """A name in use, a running container that must be stopped first, ..."""


class InvalidArgument(MinidockerError):
    """A flag or value the engine cannot accept."""


class CannotInvoke(MinidockerError):
    code = 126


class CommandNotFound(MinidockerError):
    code = 127
