"""Typed result classes: immutable, comparable, with ``to_dict()``.

They are built from the plain dicts the native module returns: timestamps become
timezone-aware :class:`datetime.datetime`, money :class:`decimal.Decimal`, JSON
fields stay plain ``dict``/``list``.

Over 600 lines as one job: every class is the same conversion (a dict in, a frozen
dataclass out) of one kind of answer; keeping them together keeps ``_native.pyi``'s
return types and these classes side by side.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    Iterator,
    List,
    Mapping,
    Optional,
    TypeVar,
    Union,
    overload,
)

from . import _native

#: A rendered template: the text of a text prompt, or the messages of a chat prompt.
Rendered = Union[str, List[Dict[str, str]]]


class RenderedText(str):
    """The text of a rendered text prompt (a ``str``), with the :attr:`resolution` of
    its includes."""

    #: Which version of each included prompt (``{{> name@label }}``) was used:
    #: ``[{"name", "selector", "version", "includes": [...]}]``, empty when none.
    resolution: List[Dict[str, Any]]


class RenderedMessages(List[Dict[str, str]]):
    """The messages of a rendered chat prompt (a ``list``), with the
    :attr:`resolution` of its includes."""

    #: Which version of each included prompt was used (see
    #: :attr:`RenderedText.resolution`).
    resolution: List[Dict[str, Any]]


def _rendered(rendered: Any, resolution: List[Dict[str, Any]]) -> Rendered:
    """A rendered template with its resolution attached."""
    out: Union[RenderedText, RenderedMessages]
    if isinstance(rendered, str):
        out = RenderedText(rendered)
    else:
        out = RenderedMessages(rendered)
    out.resolution = resolution
    return out


#: A template: a text, or ``[{"role": ..., "content": ...}]``.
Template = Union[str, List[Dict[str, str]]]

_FRACTION = re.compile(r"\.(\d{6})\d+")


def _dt(value: Optional[str]) -> Optional[datetime]:
    if value is None:
        return None
    # chrono writes `Z` and up to 9 fractional digits; Python < 3.11 accepts neither.
    text = _FRACTION.sub(r".\1", value.replace("Z", "+00:00"))
    return datetime.fromisoformat(text)


def _req_dt(value: str) -> datetime:
    d = _dt(value)
    assert d is not None
    return d


def _dec(value: Any) -> Optional[Decimal]:
    if value is None:
        return None
    return Decimal(str(value))


def _template(t: Any) -> Template:
    if isinstance(t, str):
        return t
    # Serde sorts object keys; show messages the way users write them.
    return [{"role": m["role"], "content": m["content"]} for m in t]


class _Model:
    def to_dict(self) -> Dict[str, Any]:
        """The fields as a dict (datetimes and decimals kept as Python objects)."""
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, _Model) else value
        return out


@dataclass(frozen=True)
class Prompt(_Model):
    """A named, versioned prompt."""

    id: str
    name: str
    description: Optional[str]
    tags: List[str]
    archived: bool
    labels: Dict[str, int]
    latest_version: Optional[int]
    etag: str
    created_at: datetime
    updated_at: datetime
    #: The release splits of the labels carrying one: label → {version: weight} (the
    #: label's entry in ``labels`` is the heaviest version).
    splits: Dict[str, Dict[int, int]] = dataclasses.field(default_factory=dict)

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Prompt":
        return cls(
            id=d["id"],
            name=d["name"],
            description=d.get("description"),
            tags=list(d.get("tags") or []),
            archived=bool(d.get("archived")),
            labels=dict(d.get("labels") or {}),
            latest_version=d.get("latest_version"),
            etag=d["etag"],
            created_at=_req_dt(d["created_at"]),
            updated_at=_req_dt(d["updated_at"]),
            splits={
                label: _weights(w) or {} for label, w in (d.get("splits") or {}).items()
            },
        )


def _weights(d: Optional[Mapping[str, Any]]) -> Optional[Dict[int, int]]:
    return None if d is None else {int(k): int(v) for k, v in d.items()}


@dataclass(frozen=True)
class Split(_Model):
    """A release split: the ``label`` carrying it and its ``weights`` (version →
    weight). The version a caller gets is picked by its ``split_key`` (sticky) or at
    random."""

    label: str
    weights: Dict[int, int]

    @classmethod
    def _from_opt(cls, d: Optional[Mapping[str, Any]]) -> Optional["Split"]:
        if d is None:
            return None
        return cls(label=d["label"], weights=_weights(d["weights"]) or {})


@dataclass(frozen=True)
class PromptVersion(_Model):
    """An immutable version of a prompt; ``render(**variables)`` fills it in.

    ``Registry.get`` returns the same object again while the version and its labels are
    unchanged, so treat ``config``, ``template`` and ``variables`` as read-only."""

    id: str
    prompt: str
    prompt_id: str
    version: int
    kind: str
    template: Template
    template_format: str
    variables: List[str]
    config: Dict[str, Any]
    labels: List[str]
    commit_message: Optional[str]
    created_by: Optional[str]
    created_at: datetime
    #: ``True`` for the ``fallback=`` template of :meth:`Registry.get`, returned when
    #: the registry could not be reached (then ``version == 0`` and ``id == ""``).
    is_fallback: bool = False
    #: The release split this version was picked from (resolved through a label
    #: carrying one), else ``None``.
    split: Optional[Split] = None
    #: Which version of each included prompt (``{{> name@label }}``) was expanded into
    #: ``template`` by :meth:`Registry.get`: ``[{"name", "selector", "version",
    #: "includes": [...]}]``, empty when it includes nothing or was got with
    #: ``resolve=False``.
    resolution: List[Dict[str, Any]] = dataclasses.field(default_factory=list)

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "PromptVersion":
        config = d.get("config")
        return cls(
            id=d["id"],
            prompt=d["prompt"],
            prompt_id=d["prompt_id"],
            version=d["version"],
            kind=d["kind"],
            template=_template(d["template"]),
            template_format=d["template_format"],
            variables=list(d.get("variables") or []),
            config=config if isinstance(config, dict) else {},
            labels=list(d.get("labels") or []),
            commit_message=d.get("commit_message"),
            created_by=d.get("created_by"),
            created_at=_req_dt(d["created_at"]),
            split=Split._from_opt(d.get("split")),
            resolution=list(d.get("resolution") or []),
        )

    def render(self, /, **variables: Any) -> Rendered:
        """Render with keyword variables: a ``str`` for text prompts, a list of
        ``{"role", "content"}`` dicts for chat prompts. Every missing variable is
        named in one :class:`TemplateError`."""
        # ``**variables`` is always a fresh dict: straight to the renderer (the hot path).
        result: Rendered = _native.render_template(self.template, self.template_format, variables)
        return result

    def render_with(self, variables: Mapping[str, Any]) -> Rendered:
        """:meth:`render` with the variables in a mapping (for names that are not
        Python identifiers)."""
        if not isinstance(variables, dict):
            if not isinstance(variables, Mapping):
                raise TypeError(
                    f"variables must be a mapping, not {type(variables).__name__}"
                )
            variables = dict(variables)
        result: Rendered = _native.render_template(
            self.template, self.template_format, variables
        )
        return result


@dataclass(frozen=True)
class RunError(_Model):
    """Why a run failed: a stable snake_case ``kind`` and a message."""

    kind: str
    message: str


@dataclass(frozen=True)
class Run(_Model):
    """One execution of a prompt (or an ad-hoc LLM call) and its outcome."""

    id: str
    prompt: Optional[str]
    version: Optional[int]
    label: Optional[str]
    provider: Optional[str]
    model: Optional[str]
    variables: Any
    input: Any
    output: Optional[str]
    status: str
    error: Optional[RunError]
    latency_ms: Optional[int]
    time_to_first_token_ms: Optional[int]
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    cache_read_tokens: Optional[int]
    cache_write_tokens: Optional[int]
    cost_usd: Optional[Decimal]
    metadata: Any
    created_at: datetime
    started_at: Optional[datetime]
    completed_at: Optional[datetime]
    #: How many times a background worker claimed the run (0 for a run executed by
    #: its caller or logged; 2 or more when it was executed again after its worker
    #: died or lost its lease).
    attempts: int = 0
    #: When the process executing the run last renewed its lease.
    heartbeat_at: Optional[datetime] = None
    #: Which version of each prompt the template included was used
    #: (``[{"name", "selector", "version", "includes": [...]}]``); ``None`` when it
    #: included none.
    resolution: Optional[List[Dict[str, Any]]] = None
    #: The release split of ``label`` the version was picked from, else ``None``.
    split: Optional[Split] = None

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Run":
        err = d.get("error")
        return cls(
            id=d["id"],
            prompt=d.get("prompt"),
            version=d.get("version"),
            label=d.get("label"),
            provider=d.get("provider"),
            model=d.get("model"),
            variables=d.get("variables"),
            input=d.get("input"),
            output=d.get("output"),
            status=d["status"],
            error=RunError(kind=err["kind"], message=err["message"]) if err else None,
            latency_ms=d.get("latency_ms"),
            time_to_first_token_ms=d.get("time_to_first_token_ms"),
            input_tokens=d.get("input_tokens"),
            output_tokens=d.get("output_tokens"),
            cache_read_tokens=d.get("cache_read_tokens"),
            cache_write_tokens=d.get("cache_write_tokens"),
            cost_usd=_dec(d.get("cost_usd")),
            metadata=d.get("metadata"),
            created_at=_req_dt(d["created_at"]),
            started_at=_dt(d.get("started_at")),
            completed_at=_dt(d.get("completed_at")),
            attempts=d.get("attempts", 0),
            heartbeat_at=_dt(d.get("heartbeat_at")),
            resolution=d.get("resolution"),
            split=Split._from_opt(d.get("split")),
        )


@dataclass(frozen=True)
class RunStats(_Model):
    """Aggregates over a prompt's (or the project's) runs, or one group or time bucket
    of them."""

    group: Optional[str]
    count: int
    failed: int
    error_rate: float
    latency_p50_ms: Optional[float]
    latency_p95_ms: Optional[float]
    latency_p99_ms: Optional[float]
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    bucket: Optional[datetime] = None
    """The UTC start of the row's time bucket; None when the stats are not bucketed."""

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "RunStats":
        cost = _dec(d.get("cost_usd"))
        return cls(
            group=d.get("group"),
            count=d["count"],
            failed=d["failed"],
            error_rate=float(d["error_rate"]),
            latency_p50_ms=d.get("latency_p50_ms"),
            latency_p95_ms=d.get("latency_p95_ms"),
            latency_p99_ms=d.get("latency_p99_ms"),
            input_tokens=d["input_tokens"],
            output_tokens=d["output_tokens"],
            cost_usd=cost if cost is not None else Decimal(0),
            bucket=_dt(d.get("bucket")),
        )


@dataclass(frozen=True)
class ProtectedLabel(_Model):
    """A label of the project that only admins may move or remove (``created_by`` is
    None for a default seeded when the project was first used)."""

    label: str
    created_by: Optional[str]
    created_at: datetime

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "ProtectedLabel":
        return cls(
            label=d["label"],
            created_by=d.get("created_by"),
            created_at=_req_dt(d["created_at"]),
        )


@dataclass(frozen=True)
class LabelMove(_Model):
    """One audited move of a label (``from_version`` None: new; ``to_version`` None:
    deleted)."""

    id: str
    prompt: str
    label: str
    from_version: Optional[int]
    to_version: Optional[int]
    moved_by: Optional[str]
    moved_at: datetime
    #: The release split the label carries after the move (version → weight;
    #: ``to_version`` is its heaviest arm), ``None`` when it points at one version.
    split: Optional[Dict[int, int]] = None

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "LabelMove":
        return cls(
            id=d["id"],
            prompt=d["prompt"],
            label=d["label"],
            from_version=d.get("from_version"),
            to_version=d.get("to_version"),
            moved_by=d.get("moved_by"),
            moved_at=_req_dt(d["moved_at"]),
            split=_weights(d.get("split")),
        )


@dataclass(frozen=True)
class StoredProvider(_Model):
    """A provider credential stored in the project, as shown: the API key masked
    (``sk-…abcd``), never the key itself nor its sealed form."""

    name: str
    kind: str
    base_url: Optional[str]
    api_key: str
    default_params: Dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "StoredProvider":
        return cls(
            name=d["name"],
            kind=d["kind"],
            base_url=d.get("base_url"),
            api_key=d["api_key"],
            default_params=dict(d.get("default_params") or {}),
            created_at=_req_dt(d["created_at"]),
            updated_at=_req_dt(d["updated_at"]),
        )


#: One result of :meth:`Registry.batch`, by operation: the prompt after
#: ``create_prompt``/``update_prompt``, the new version of ``create_version``, the
#: recorded move of ``set_label``/``delete_label``, the name of an archived prompt.
BatchResult = Union[Prompt, PromptVersion, LabelMove, str]


def _batch_result(d: Mapping[str, Any]) -> BatchResult:
    # An outcome is externally tagged: {"prompt": {...}}, {"archived": "name"}, ...
    [(tag, value)] = list(d.items())
    if tag == "prompt":
        return Prompt._from(value)
    if tag == "version":
        return PromptVersion._from(value)
    if tag == "label_move":
        return LabelMove._from(value)
    if tag == "archived":
        name: str = value
        return name
    raise ValueError(f"unknown batch outcome {tag!r}")


@dataclass(frozen=True)
class Event(_Model):
    """One entry of the project's change log. ``seq`` numbers a project's events 1, 2,
    3, ... in commit order, without gaps; ``type`` is what happened
    (``prompt.created``, ``prompt.updated``, ``prompt.archived``, ``version.created``,
    ``label.moved``, ``label.removed``, ``api_key.created``, ``api_key.revoked``,
    ``credential.put``, ``credential.deleted``, ``member.changed``); ``data`` holds
    the type's details (e.g. ``{"from": 1}`` for a label move), never a secret."""

    seq: int
    id: str
    project: str
    type: str
    prompt: Optional[str]
    version: Optional[int]
    label: Optional[str]
    actor: Optional[str]
    at: datetime
    data: Any

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Event":
        return cls(
            seq=d["seq"],
            id=d["id"],
            project=d["project"],
            type=d["type"],
            prompt=d.get("prompt"),
            version=d.get("version"),
            label=d.get("label"),
            actor=d.get("actor"),
            at=_req_dt(d["at"]),
            data=d.get("data"),
        )


@dataclass(frozen=True)
class EventPage(_Model):
    """A page of the change log: ``events`` after the cursor asked with, oldest first;
    ``next`` is the cursor to ask with next (``events(after=page.next)``), ``head`` the
    project's latest ``seq`` when the page was read. Iterable, like :class:`Page`."""

    events: List[Event]
    next: int
    head: int

    @property
    def has_more(self) -> bool:
        """Whether more events follow this page (``next < head``)."""
        return self.next < self.head

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "EventPage":
        return cls(
            events=[Event._from(e) for e in d["events"]],
            next=d["next"],
            head=d["head"],
        )

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def to_dict(self) -> Dict[str, Any]:
        """``{"events": [...], "next": ..., "head": ...}`` with each event's
        ``to_dict()``."""
        return {
            "events": [e.to_dict() for e in self.events],
            "next": self.next,
            "head": self.head,
        }


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results: iterable, indexable; ``next_cursor`` is None on the last."""

    items: List[T]
    next_cursor: Optional[str]

    @classmethod
    def _from(cls, d: Mapping[str, Any], item: Callable[[Mapping[str, Any]], T]) -> "Page[T]":
        return cls(items=[item(x) for x in d["items"]], next_cursor=d.get("next_cursor"))

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> List[T]: ...
    def __getitem__(self, i: Union[int, slice]) -> Union[T, List[T]]:
        return self.items[i]

    def to_dict(self) -> Dict[str, Any]:
        """``{"items": [...], "next_cursor": ...}`` with each item's ``to_dict()``."""
        return {
            "items": [x.to_dict() if isinstance(x, _Model) else x for x in self.items],
            "next_cursor": self.next_cursor,
        }


@dataclass(frozen=True)
class DiffSegment(_Model):
    """A run of words (and the spaces between them) of a changed line: ``op`` is
    ``equal`` (in both lines), ``delete`` (only the old) or ``insert`` (only the new)."""

    op: str
    text: str

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "DiffSegment":
        return cls(op=d["op"], text=d["text"])


@dataclass(frozen=True)
class DiffLine(_Model):
    """One line of a :class:`DiffHunk`. ``op`` is ``equal`` (context), ``delete`` (only
    in ``from``: ``old_line``, ``text``), ``insert`` (only in ``to``: ``new_line``,
    ``text``) or ``change`` (a line replaced by another: ``old_text``, ``new_text`` and
    their word-level ``segments``). Line numbers start at 1."""

    op: str
    old_line: Optional[int]
    new_line: Optional[int]
    text: Optional[str]
    old_text: Optional[str]
    new_text: Optional[str]
    segments: List[DiffSegment]

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "DiffLine":
        return cls(
            op=d["op"],
            old_line=d.get("old_line"),
            new_line=d.get("new_line"),
            text=d.get("text"),
            old_text=d.get("old_text"),
            new_text=d.get("new_text"),
            segments=[DiffSegment._from(s) for s in d.get("segments") or []],
        )


@dataclass(frozen=True)
class DiffHunk(_Model):
    """A changed region of a text with up to 3 unchanged lines of context around it."""

    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    lines: List[DiffLine]

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "DiffHunk":
        return cls(
            old_start=d["old_start"],
            old_lines=d["old_lines"],
            new_start=d["new_start"],
            new_lines=d["new_lines"],
            lines=[DiffLine._from(x) for x in d["lines"]],
        )


def _message(m: Any) -> Optional[Dict[str, str]]:
    return None if m is None else {"role": m["role"], "content": m["content"]}


@dataclass(frozen=True)
class MessageDiff(_Model):
    """One message of a chat diff: ``status`` is ``added``, ``removed``, ``changed``
    (replaced at the same place; ``role_changed``, and the content's ``hunks``) or
    ``unchanged``. Indexes start at 0."""

    status: str
    from_index: Optional[int]
    to_index: Optional[int]
    from_message: Optional[Dict[str, str]]
    to_message: Optional[Dict[str, str]]
    role_changed: bool
    hunks: List[DiffHunk]

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "MessageDiff":
        return cls(
            status=d["status"],
            from_index=d.get("from_index"),
            to_index=d.get("to_index"),
            from_message=_message(d.get("from")),
            to_message=_message(d.get("to")),
            role_changed=bool(d.get("role_changed")),
            hunks=[DiffHunk._from(h) for h in d.get("hunks") or []],
        )


@dataclass(frozen=True)
class DiffSide(_Model):
    """One side of a :class:`VersionDiff`: the version and its commit message."""

    version: int
    kind: str
    template_format: str
    commit_message: Optional[str]
    created_by: Optional[str]
    created_at: datetime
    labels: List[str]

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "DiffSide":
        return cls(
            version=d["version"],
            kind=d["kind"],
            template_format=d["template_format"],
            commit_message=d.get("commit_message"),
            created_by=d.get("created_by"),
            created_at=_req_dt(d["created_at"]),
            labels=list(d.get("labels") or []),
        )


@dataclass(frozen=True)
class VersionDiff(_Model):
    """What changed from one version to another (``Registry.diff``).

    ``template_kind`` is ``text`` (``hunks``; also when the kind changed, then the text
    is diffed against the messages' contents joined by a blank line) or ``chat``
    (``messages``). ``config_patch`` is an RFC 6902 JSON Patch turning ``from_``'s
    config into ``to``'s."""

    prompt: str
    from_: DiffSide
    to: DiffSide
    identical: bool
    kind_changed: bool
    format_changed: bool
    template_kind: str
    hunks: List[DiffHunk]
    messages: List[MessageDiff]
    variables_added: List[str]
    variables_removed: List[str]
    config_patch: List[Dict[str, Any]]

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "VersionDiff":
        t = d["template"]
        return cls(
            prompt=d["prompt"],
            from_=DiffSide._from(d["from"]),
            to=DiffSide._from(d["to"]),
            identical=bool(d["identical"]),
            kind_changed=bool(d["kind_changed"]),
            format_changed=bool(d["format_changed"]),
            template_kind=t["kind"],
            hunks=[DiffHunk._from(h) for h in t.get("hunks") or []],
            messages=[MessageDiff._from(m) for m in t.get("messages") or []],
            variables_added=list(d["variables"]["added"]),
            variables_removed=list(d["variables"]["removed"]),
            config_patch=list(d["config"]),
        )


@dataclass(frozen=True)
class ImportPlan(_Model):
    """What ``Registry.import_prompts`` does (or did, when ``applied``): prompts
    created or updated (description, tags), versions created (``prompt``,
    ``document_version``, ``version`` once created, ``labels``), labels moved or
    removed (``prompt``, ``label``, ``from``, ``to``, ``document_version``), what is
    left alone, the ``conflicts`` (``prompt``, ``message``) that refuse the whole
    import with nothing written, and how many ``operations`` its one transaction
    holds (an import is not capped at a batch's 1000)."""

    created_prompts: List[str]
    updated_prompts: List[str]
    created_versions: List[Dict[str, Any]]
    moved_labels: List[Dict[str, Any]]
    removed_labels: List[Dict[str, Any]]
    left_alone: List[Dict[str, Any]]
    conflicts: List[Dict[str, Any]]
    applied: bool
    operations: int

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "ImportPlan":
        return cls(
            created_prompts=list(d["created_prompts"]),
            updated_prompts=list(d["updated_prompts"]),
            created_versions=list(d["created_versions"]),
            moved_labels=list(d["moved_labels"]),
            removed_labels=list(d["removed_labels"]),
            left_alone=list(d["left_alone"]),
            conflicts=list(d["conflicts"]),
            applied=bool(d["applied"]),
            operations=int(d.get("operations", 0)),
        )
