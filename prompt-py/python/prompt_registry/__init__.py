"""Prompt Registry for Python: versioned prompts, labels, rendering, execution and an
LLM run log, on a Rust core.

>>> import prompt_registry as pr
>>> reg = pr.Registry.open("memory://")
>>> v = reg.create_version("greet", "Hello {{ name }}!", labels=["production"])
>>> reg.get("greet").render(name="Ada")
'Hello Ada!'
"""

from __future__ import annotations

from . import _native
from ._errors import (
    AlreadyExistsError,
    AuthError,
    ConflictError,
    InternalError,
    NotFoundError,
    PreconditionFailedError,
    GoneError,
    PromptRegistryError,
    ProviderAuthError,
    ProviderError,
    TemplateError,
    UnavailableError,
    UnsupportedError,
    ValidationError,
)
from ._models import (
    BatchResult,
    DiffHunk,
    DiffLine,
    DiffSegment,
    DiffSide,
    Event,
    EventPage,
    LabelMove,
    Split,
    MessageDiff,
    Page,
    Prompt,
    PromptVersion,
    ProtectedLabel,
    Rendered,
    RenderedMessages,
    RenderedText,
    Run,
    RunError,
    RunStats,
    StoredProvider,
    Template,
    VersionDiff,
    ImportPlan,
)
from ._async_registry import AsyncRegistry
from ._convert import UNSET
from ._registry import Registry
from ._tools import Analysis, Created, Critique, Length, Lint, Optimized, Remix, Score, Style

__version__: str = _native.__version__

__all__ = [
    "Registry",
    "AsyncRegistry",
    "Prompt",
    "PromptVersion",
    "Run",
    "RunError",
    "RunStats",
    "StoredProvider",
    "LabelMove",
    "Split",
    "ProtectedLabel",
    "VersionDiff",
    "ImportPlan",
    "DiffSide",
    "DiffHunk",
    "DiffLine",
    "DiffSegment",
    "MessageDiff",
    "Page",
    "BatchResult",
    "Event",
    "EventPage",
    "Rendered",
    "RenderedMessages",
    "RenderedText",
    "Template",
    "UNSET",
    "Analysis",
    "Critique",
    "Length",
    "Lint",
    "Score",
    "Remix",
    "Style",
    "Created",
    "Optimized",
    "PromptRegistryError",
    "NotFoundError",
    "AlreadyExistsError",
    "ConflictError",
    "PreconditionFailedError",
    "GoneError",
    "ValidationError",
    "TemplateError",
    "ProviderError",
    "ProviderAuthError",
    "AuthError",
    "UnavailableError",
    "UnsupportedError",
    "InternalError",
    "__version__",
]
