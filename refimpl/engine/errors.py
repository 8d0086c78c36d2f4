"""The engine's errors: each carries the HTTP status Docker answers with.

The api layer turns any exception with a `status` attribute into
`{"message": str(exc)}` with that status, so the engine raises these and never
speaks HTTP itself. Messages are one line and worded as Docker words them.
"""


class EngineError(Exception):
    status = 500


class InvalidParameter(EngineError):
    status = 400


class Forbidden(EngineError):
    status = 403


class NotFound(EngineError):
    status = 404


class Conflict(EngineError):
    status = 409


class NotModified(EngineError):
    status = 304


class Unavailable(EngineError):
    status = 503
