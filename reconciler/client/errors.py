"""Client-side errors: one class per API failure a caller handles differently.

    ClientError                  any failed request (code, reason, message, status body)
    ├── BadRequestError          400
    ├── UnauthorizedError        401
    ├── ForbiddenError           403
    ├── NotFoundError            404
    ├── ConflictError            409 Conflict (stale resourceVersion)
    ├── AlreadyExistsError       409 AlreadyExists
    ├── GoneError                410 (a watch must relist)
    ├── InvalidError             422 (with `causes`: field paths)
    └── ServerError              5xx and transport failures

`from_status` is the one place a Status body or an HTTP code becomes one of these, for both
the in-process and the HTTP client.
"""

from __future__ import annotations

from typing import Any

JSONDict = dict[str, Any]


class ClientError(Exception):
    def __init__(self, code: int, reason: str, message: str, status: JSONDict | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.status = status or {}

    @property
    def causes(self) -> list[JSONDict]:
        details = self.status.get("details") or {}
        return list(details.get("causes") or [])


class BadRequestError(ClientError):
    pass


class UnauthorizedError(ClientError):
    pass


class ForbiddenError(ClientError):
    pass


class NotFoundError(ClientError):
    pass


class ConflictError(ClientError):
    pass


class AlreadyExistsError(ClientError):
    pass


class GoneError(ClientError):
    pass


class InvalidError(ClientError):
    pass


class ServerError(ClientError):
    pass


_BY_CODE: dict[int, type[ClientError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    410: GoneError,
    422: InvalidError,
}


def from_status(code: int, status: JSONDict | None, fallback_message: str = "") -> ClientError:
    """The error for an HTTP code and (if the server sent one) its Status body."""
    body = status if isinstance(status, dict) else {}
    reason = str(body.get("reason") or "")
    message = str(body.get("message") or fallback_message or f"request failed with {code}")
    if code == 409:
        cls: type[ClientError] = AlreadyExistsError if reason == "AlreadyExists" else ConflictError
    elif code >= 500 or code == 0:
        cls = ServerError
    else:
        cls = _BY_CODE.get(code, ClientError)
    return cls(code, reason, message, body)
