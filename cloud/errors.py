"""One error tree for the cloud: every refusal a caller can act on is a ``CloudError``.

Each error carries a stable ``code`` (for programs), a ``message`` (for people) and the HTTP
``status`` it means. Features raise subclasses named for what went wrong in their domain
(``PhoneTaken``, ``UnknownRollout``); the API turns any of them into the one JSON error shape
``{"detail": {"code": ..., "message": ...}}`` with one exception handler, and the CLI prints the
message and exits with one handler, so neither translates errors case by case.

The kind classes below fix the status; a feature error picks its kind and its default code, and
may pass a more precise code per instance (``EnrolError("no_face", ...)``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar


class CloudError(Exception):
    """Base of every cloud error: a stable code, a message for people, an HTTP status."""

    status: int = HTTPStatus.BAD_REQUEST
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


class CodedError(CloudError):
    """A family of refusals told apart by a code given first; ``statuses`` maps the codes whose HTTP
    status differs from the family's own ``status``."""

    statuses: ClassVar[dict[str, int]] = {}

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code, status=self.statuses.get(code, self.status))


class Invalid(CloudError):
    """The request is well-formed but its content cannot be used (HTTP 422)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid"


class NotFound(CloudError):
    """What the request names does not exist (HTTP 404)."""

    status = HTTPStatus.NOT_FOUND
    code = "not_found"


class Conflict(CloudError):
    """The request clashes with the current state (HTTP 409)."""

    status = HTTPStatus.CONFLICT
    code = "conflict"


class Unauthorized(CloudError):
    """No usable credentials (HTTP 401)."""

    status = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"


class Forbidden(CloudError):
    """The caller is known but may not do this (HTTP 403)."""

    status = HTTPStatus.FORBIDDEN
    code = "forbidden"


class TooLarge(CloudError):
    """The request or its upload is over a limit (HTTP 413)."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "too_large"


class TooManyRequests(CloudError):
    """The caller is over its rate limit (HTTP 429)."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "rate_limited"


class Unavailable(CloudError):
    """A part the request needs is not running or not configured (HTTP 503)."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "unavailable"
