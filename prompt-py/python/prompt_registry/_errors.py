"""The exception hierarchy of Prompt Registry.

Every error the Rust core reports is raised as a subclass of
:class:`PromptRegistryError`; the Rust side picks the class in one place
(``prompt-py/src/error.rs``). ``kind`` is the core's stable error kind
(``not_found``, ``invalid_input``, ``provider`` ...). An error that refused a
:meth:`Registry.batch` carries the failing operation's ``index``.
"""

from __future__ import annotations

from typing import Any, List, Optional


class PromptRegistryError(Exception):
    """Base class of every Prompt Registry error."""

    kind: str = "internal"
    message: str
    #: For an error raised by :meth:`Registry.batch`: the 0-based index of the
    #: operation that failed, or ``None`` when the batch as a whole was refused (empty,
    #: too long, database unavailable). ``None`` for every other call.
    index: Optional[int] = None

    def __init__(self, message: str = "", **attrs: Any) -> None:
        super().__init__(message)
        self.message = message
        for key, value in attrs.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class NotFoundError(PromptRegistryError, LookupError):
    """The prompt, version, label or run does not exist."""

    kind = "not_found"
    what: Optional[str] = None


class AlreadyExistsError(PromptRegistryError):
    """An object with the same unique key exists already (e.g. a prompt name)."""

    kind = "already_exists"
    what: Optional[str] = None


class ConflictError(PromptRegistryError):
    """The request conflicts with the current state, e.g. a version created with a
    ``parent_version`` that is no longer the latest (the message names the latest)."""

    kind = "conflict"


class PreconditionFailedError(PromptRegistryError):
    """A precondition did not hold: an ``if_match`` etag that is not the current one,
    or a label's ``expected_version`` that is not where the label points (the message
    says where it points now)."""

    kind = "precondition_failed"


class GoneError(PromptRegistryError):
    """What was asked for is no longer kept (a change-log cursor older than the
    retained log): read the current state again, then follow the log from its head."""

    kind = "gone"


class ValidationError(PromptRegistryError, ValueError):
    """An argument is invalid. ``field`` names it (a dotted path for nested ones)."""

    kind = "invalid_input"
    field: Optional[str] = None
    missing_variables: List[str]
    unexpected_variables: List[str]

    def __init__(self, message: str = "", **attrs: Any) -> None:
        self.missing_variables = []
        self.unexpected_variables = []
        super().__init__(message, **attrs)


class TemplateError(ValidationError):
    """A template could not be rendered; ``missing_variables`` lists every missing one."""

    kind = "template"


class ProviderError(PromptRegistryError):
    """An LLM provider call failed. ``retryable`` says whether retrying may help."""

    kind = "provider"
    provider: Optional[str] = None
    provider_kind: Optional[str] = None
    status: Optional[int] = None
    retryable: bool = False
    retry_after: Optional[float] = None
    vendor_code: Optional[str] = None
    request_id: Optional[str] = None
    #: The failed run, when raised by ``execute(..., raise_on_error=True)``.
    run: Optional[Any] = None


class AuthError(PromptRegistryError):
    """Credentials are missing, invalid or lack permission: a remote server answered
    401 (``kind == "unauthorized"``) or 403 (``kind == "forbidden"``), or a provider
    refused our credentials (:class:`ProviderAuthError`). ``status`` is the HTTP status."""

    kind = "auth"
    status: Optional[int] = None


class ProviderAuthError(ProviderError, AuthError):
    """The provider refused our credentials (both a ProviderError and an AuthError)."""

    kind = "provider"


class UnavailableError(PromptRegistryError):
    """A dependency (database, network) is temporarily unavailable; retrying may help.
    ``kind == "storage"`` when the database's storage refused a write (disk full,
    read-only, I/O error; a server's 507 ``insufficient_storage``): retry once space
    is freed."""

    kind = "unavailable"
    retry_after: Optional[float] = None


class UnsupportedError(PromptRegistryError, NotImplementedError):
    """The backend does not implement this operation."""

    kind = "unsupported"
    operation: Optional[str] = None


class InternalError(PromptRegistryError):
    """A bug or unexpected state."""

    kind = "internal"


__all__ = [
    "PromptRegistryError",
    "NotFoundError",
    "AlreadyExistsError",
    "ConflictError",
    "PreconditionFailedError",
    "GoneError",
    "ValidationError",
    "TemplateError",
    "ProviderError",
    "AuthError",
    "ProviderAuthError",
    "UnavailableError",
    "UnsupportedError",
    "InternalError",
]
