"""``AsyncRegistry``: the prompt registry for asyncio.

This file is the one implementation of the registry class: the blocking ``Registry``
(``_registry.py``) is generated from it by ``scripts/unasync.py`` (``async def`` becomes
``def``, ``await`` goes, ``AsyncRegistry`` becomes ``Registry``, ``_native.open_async``
becomes ``_native.open``). Change the code here, then run ``python3 scripts/unasync.py``;
the test suite fails while the generated file is stale.

Both classes wrap one native registry; the blocking one releases the GIL while it waits,
so other Python threads run meanwhile.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union, overload

from . import _native
from ._convert import (
    DEFAULT_CACHE_TTL_MS,
    UNSET,
    _batch_ops,
    _check_project,
    _check_url,
    _credential,
    _diff_selector,
    _exec_options,
    _execution,
    _fallback_version,
    _iso,
    _log_fields,
    _logged,
    _run_fields,
    _run_id,
    _run_query,
    _stats_query,
    _tags,
    _total,
    _ttl,
    _update,
    _vars,
    _version_payload,
)
from ._errors import PromptRegistryError, UnavailableError
from ._models import (
    BatchResult,
    EventPage,
    ImportPlan,
    LabelMove,
    Page,
    Prompt,
    PromptVersion,
    ProtectedLabel,
    Rendered,
    Run,
    RunError,
    RunStats,
    StoredProvider,
    Template,
    VersionDiff,
    _batch_result,
    _rendered,
)
from ._tools import (
    Analysis,
    Created,
    Optimized,
    Remix,
    Style,
    analyze_request,
    create_request,
    optimize_request,
    remix_request,
)


class AsyncRegistry:
    """A prompt registry for asyncio: every I/O method is a coroutine.
    ``await AsyncRegistry.open(url)`` to get one."""

    def __init__(self, native: Any) -> None:
        if not isinstance(native, _native.NativeRegistry) or not native.is_async:
            raise TypeError("use await AsyncRegistry.open(url)")
        self._n = native
        # Immutable version objects, reused by get() (see NativeRegistry.resolve_cached).
        self._versions: Dict[str, PromptVersion] = {}

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        project: Optional[str] = None,
        cache: bool = True,
        cache_ttl_ms: int = DEFAULT_CACHE_TTL_MS,
        api_key: Optional[str] = None,
        master_key: Optional[str] = None,
        token: Optional[str] = None,
    ) -> "AsyncRegistry":
        """Open ``memory://``, ``sqlite:///path.db`` (created if missing; migrations
        applied), ``postgres://...``, or a server at ``http(s)://host:port`` (remote).

        Embedded: ``project`` defaults to ``default`` (created if missing); providers
        come from the environment (``mock`` is always there); ``cache`` keeps resolved
        versions in process for ``cache_ttl_ms``.

        Remote: ``api_key`` (or ``$PROMPT_REGISTRY_API_KEY``) is required and decides the
        project (``project``, if given, must be the key's). Executions run on the server.
        ``cache`` keeps label lookups for ``cache_ttl_ms``, then serves them stale while
        refreshing in the background, so a server that goes down does not break prompts
        already fetched. Meanwhile the registry follows the server's event stream and
        drops a prompt's cached lookups as soon as an event about it arrives (a label
        moved by anyone is seen at once, not after ``cache_ttl_ms``, which stays the
        bound while the stream is down). A server that is down at open is not an error; a refused key
        is (:class:`AuthError`). ``token`` instead of ``api_key``: a signed-in user's
        access token (from ``POST /api/auth/login``); then ``project`` is required
        (``ORG/NAME``, or ``NAME`` in the organization ``default``), the role is the
        user's there, and the token expires after its lifetime (15 minutes by default):
        long-running programs use an API key.

        ``master_key`` (embedded only; else ``$PROMPT_REGISTRY_MASTER_KEY``): 32 random
        bytes as 64 hex characters or base64, the key provider credentials stored with
        :meth:`put_provider` are sealed under (AES-256-GCM), as the server does. Stored
        credentials come before the environment's providers in every execution."""
        url, api_key = _check_url(url, _credential(api_key, token, project))
        if master_key is not None and not isinstance(master_key, str):
            raise TypeError(f"master_key must be a str, not {type(master_key).__name__}")
        native = await _native.open_async(
            url, _check_project(project), _ttl(cache, cache_ttl_ms), api_key, master_key
        )
        return cls(native)

    @property
    def remote_url(self) -> Optional[str]:
        """The server's URL for a remote registry, else ``None``."""
        url: Optional[str] = self._n.remote_url
        return url

    @property
    def project(self) -> str:
        """The project this registry works in."""
        name: str = self._n.project
        return name

    def __repr__(self) -> str:
        if self.remote_url is not None:  # never a request: repr must not fail
            return f"AsyncRegistry(url={self.remote_url!r})"
        return f"AsyncRegistry(project={self.project!r})"

    # prompts
    async def create_prompt(
        self, name: str, *, description: Optional[str] = None, tags: Optional[Sequence[str]] = None
    ) -> Prompt:
        """Create a prompt; :class:`AlreadyExistsError` if the name is taken."""
        return Prompt._from(await self._n.create_prompt(name, description, _tags(tags)))

    async def get_prompt(self, name: str) -> Prompt:
        """A prompt by name, with its labels."""
        return Prompt._from(await self._n.get_prompt(name))

    async def list_prompts(
        self,
        *,
        tag: Optional[str] = None,
        name_prefix: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Prompt]:
        """Live (not archived) prompts, by name."""
        return Page._from(await self._n.list_prompts(tag, name_prefix, limit, cursor), Prompt._from)

    async def update_prompt(
        self,
        name: str,
        *,
        description: Optional[str] = UNSET,
        tags: Optional[Sequence[str]] = UNSET,
        if_match: Optional[str] = None,
    ) -> Prompt:
        """Change description and/or tags (``description=None`` clears it); with
        ``if_match`` only if the etag still matches (else
        :class:`PreconditionFailedError`)."""
        return Prompt._from(await self._n.update_prompt(name, _update(description, tags), if_match))

    async def archive(self, name: str) -> None:
        """Archive a prompt (hidden from lists and lookups by name)."""
        await self._n.archive_prompt(name)

    archive_prompt = archive

    # versions and labels
    async def create_version(
        self,
        name: str,
        template: Template,
        *,
        config: Optional[Mapping[str, Any]] = None,
        labels: Optional[Sequence[str]] = None,
        commit_message: Optional[str] = None,
        template_format: str = "mustache",
        parent_version: Optional[int] = None,
    ) -> PromptVersion:
        """Create the next version (and the prompt if missing); ``latest`` and the
        given ``labels`` move to it atomically.

        ``parent_version``: the version this edit is based on (``0``: the prompt had
        no version). If the prompt's latest version is another one by now (someone
        else saved meanwhile), nothing is written and :class:`ConflictError` names the
        current latest: rebase the edit on it and try again. ``None``: no check."""
        payload = _version_payload(
            template, config, labels, commit_message, template_format, parent_version
        )
        return PromptVersion._from(await self._n.create_version(name, payload))

    async def list_versions(
        self, name: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[PromptVersion]:
        """Versions, newest first."""
        return Page._from(await self._n.list_versions(name, limit, cursor), PromptVersion._from)

    async def get(
        self,
        name: str,
        *,
        label: Optional[str] = None,
        version: Optional[int] = None,
        fallback: Optional[Template] = None,
        fallback_format: str = "mustache",
        split_key: Optional[str] = None,
        resolve: bool = True,
    ) -> PromptVersion:
        """Resolve a version: by ``label`` (default ``production``) or ``version``.

        Includes (``{{> name@label }}``) are expanded: ``template`` holds the included
        texts, ``variables`` those of the whole expansion and ``resolution`` which
        version of each included prompt was used, so ``.render()`` works offline.
        ``resolve=False`` gives the template as stored.

        A label carrying a release split gives one of its versions: the same for every
        call with the same ``split_key`` while the split stands, a random one without
        a key; ``.split`` on the answer says which split it came from.

        ``fallback`` (a template, text or chat) is returned as a version with
        ``is_fallback=True`` (and ``version == 0``) when the registry cannot be reached
        and nothing is cached, instead of raising :class:`UnavailableError`. Any other
        error (a missing prompt, a refused key) is still raised."""
        try:
            if not isinstance(resolve, bool):
                raise TypeError(f"resolve must be a bool, not {type(resolve).__name__}")
            v: PromptVersion = await self._n.resolve_cached(
                name, label, version, self._versions, PromptVersion._from, split_key, resolve
            )
        except UnavailableError:
            if fallback is None:
                raise
            return _fallback_version(name, fallback, fallback_format)
        return v

    async def get_version(self, name: str, version: int) -> PromptVersion:
        """One version by number."""
        return await self.get(name, version=version)

    async def set_label(
        self,
        name: str,
        label: str,
        version: int,
        *,
        actor: Optional[str] = None,
        expected_version: Optional[int] = None,
    ) -> LabelMove:
        """Point ``label`` at ``version`` (audited). ``latest`` cannot be set.

        ``expected_version`` makes it a compare-and-set: ``None`` checks nothing, ``0``
        requires the label to be unset, ``n`` requires it to point at version ``n``
        now. If it does not, nothing moves and :class:`PreconditionFailedError` says
        where the label points (a negative value is a :class:`ValidationError` on
        ``expected_version``)."""
        return LabelMove._from(
            await self._n.set_label(name, label, version, actor, expected_version)
        )

    async def set_label_split(
        self,
        name: str,
        label: str,
        split: Mapping[int, int],
        *,
        actor: Optional[str] = None,
        expected_version: Optional[int] = None,
    ) -> LabelMove:
        """Point ``label`` at a release split, e.g. ``{4: 90, 5: 10}`` (version →
        positive integer weight, any sum, 2 to 10 versions; audited). The label's
        version becomes the heaviest arm; :meth:`set_label` to one version ends the
        split. ``expected_version`` as in :meth:`set_label`; a bad split is a
        :class:`ValidationError` naming ``split`` or ``split.N``."""
        weights = {str(k): v for k, v in split.items()}
        return LabelMove._from(
            await self._n.set_label_split(name, label, weights, actor, expected_version)
        )

    async def delete_label(
        self,
        name: str,
        label: str,
        *,
        actor: Optional[str] = None,
        expected_version: Optional[int] = None,
    ) -> LabelMove:
        """Remove a label (audited).

        ``expected_version``: as for :meth:`set_label` (``n``: only if the label still
        points at ``n``, else :class:`PreconditionFailedError`; ``0``, "must be unset",
        never deletes anything)."""
        return LabelMove._from(await self._n.delete_label(name, label, actor, expected_version))

    async def delete_version(self, name: str, version: int) -> None:
        """Delete a version: a tombstone. It no longer resolves, renders or executes
        (:class:`NotFoundError` saying it was deleted), is hidden from
        :meth:`list_versions`, and its number is never reused; runs keep referring to
        it. Labels other than ``latest`` must be moved off it first
        (:class:`ConflictError` naming them); ``latest`` moves to the newest version
        left (none once every version is deleted)."""
        await self._n.delete_version(name, version)

    async def run_retention_days(self) -> Optional[int]:
        """The project's run retention in days (``None``: runs are kept forever)."""
        days: Optional[int] = await self._n.run_retention_days()
        return days

    async def set_run_retention(self, days: Optional[int]) -> Optional[int]:
        """Keep the project's runs ``days`` days (1 to 36500; ``None``: forever): a
        server's retention task deletes older ones, by creation time, whatever their
        status. Returns the retention as stored. Out of range is a
        :class:`ValidationError` on ``run_retention_days``."""
        if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
            raise TypeError(f"days must be an int or None, not {type(days).__name__}")
        stored: Optional[int] = await self._n.set_run_retention(days)
        return stored

    async def delete_runs(self, *, before: datetime, limit: Optional[int] = None) -> int:
        """Delete the project's runs created before ``before`` (timezone-aware),
        whatever their status: all of them, or at most ``limit`` (the oldest first).
        Deleted in bounded batches, so writers are not held up. Returns how many were
        deleted. A ``limit`` below 1 is a :class:`ValidationError` on ``limit``."""
        when = _iso("before", before)
        if when is None:
            raise TypeError("before must be a datetime, not NoneType")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise TypeError(f"limit must be an int or None, not {type(limit).__name__}")
        deleted: int = await self._n.delete_runs_before(when, limit)
        return deleted

    async def protected_labels(self) -> List[ProtectedLabel]:
        """The labels only admins may move in this project (seeded with
        ``production`` when first used; a remote registry gets the server's list)."""
        return [ProtectedLabel._from(d) for d in await self._n.protected_labels()]

    async def protect_label(self, label: str) -> ProtectedLabel:
        """Protect ``label`` in this project (nothing changes if it already is;
        ``latest`` is a :class:`ValidationError`). Over a server this needs an admin
        key."""
        return ProtectedLabel._from(await self._n.protect_label(label))

    async def unprotect_label(self, label: str) -> None:
        """Stop protecting ``label`` (:class:`NotFoundError` if it is not protected)."""
        await self._n.unprotect_label(label)

    async def diff(
        self,
        name: str,
        *,
        from_: Union[int, str],
        to: Union[int, str],
    ) -> VersionDiff:
        """What changed from one version to another, each a version number (``int``) or
        a label name (``str``): text line hunks with word-level segments, chat messages
        added/removed/changed/unchanged, variables added and removed, the template
        format and kind, a JSON Patch of the config, and both commit messages. The same
        version twice gives ``identical``. :class:`NotFoundError` names the missing side;
        a version below 1 or a bad label is a :class:`ValidationError` whose ``field`` is
        ``from_`` or ``to``."""
        return VersionDiff._from(
            await self._n.diff(name, _diff_selector("from_", from_), _diff_selector("to", to))
        )

    async def export_prompts(
        self, *, heads: bool = False, prefix: Optional[str] = None
    ) -> Dict[str, Any]:
        """Every live prompt as a document, ``{"prompts": [{name, description, tags,
        versions: [{version, template, template_format, config, commit_message}],
        labels: {label: version}}]}`` (the format of ``prompt-registry export`` and
        ``GET /api/v1/export``; a label carrying a release split is
        ``{label: {"split": {version: weight}}}``): all live versions, or with ``heads``
        only the labelled ones (every arm of a split) and the latest; ``prefix`` keeps
        prompts whose name starts with it."""
        out: Dict[str, Any] = await self._n.export_prompts(heads, prefix)
        return out

    async def import_prompts(
        self,
        docs: Mapping[str, Any],
        *,
        dry_run: bool = False,
        prune_labels: bool = False,
    ) -> ImportPlan:
        """Apply documents as :meth:`export_prompts` gives them, idempotently and in one
        transaction: versions are matched by content (template, format, config) and
        only the others created, labels moved as declared, description and tags
        updated; nothing is deleted (labels only with ``prune_labels``). The plan is
        returned in every case: ``applied`` says whether it was written; with
        ``conflicts`` nothing was. A malformed document is a :class:`ValidationError`."""
        return ImportPlan._from(await self._n.import_prompts(docs, dry_run, prune_labels))

    async def label_history(
        self,
        name: str,
        label: str = "production",
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[LabelMove]:
        """Moves of a label, newest first."""
        return Page._from(await self._n.label_history(name, label, limit, cursor), LabelMove._from)

    async def batch(self, ops: Sequence[Mapping[str, Any]]) -> List[BatchResult]:
        """Apply up to 1000 operations in one transaction, all or nothing. Each is a
        dict as in ``POST /api/v1/batch``, tagged by ``op``:

        - ``{"op": "create_prompt", "prompt": {"name", "description"?, "tags"?}}``
        - ``{"op": "update_prompt", "name", "update": {"description"?, "tags"?}, "if_match"?}``
        - ``{"op": "archive_prompt", "name"}``
        - ``{"op": "create_version", "name", "version": {"template", "labels"?, "parent_version"?, ...}}``
        - ``{"op": "set_label", "name", "label", "version", "expected_version"?}``, or with
          ``"split": {version: weight}`` instead of ``version`` (a release split)
        - ``{"op": "delete_label", "name", "label", "expected_version"?}``

        In a batch, ``"expected_version": None`` means "the label must be unset" (the
        wire's ``null``); leave the key out for no check.

        Returns one result per operation, in order: the :class:`Prompt` after
        ``create_prompt``/``update_prompt``, the new :class:`PromptVersion`, the
        :class:`LabelMove` of a label operation, the name (``str``) of an archived
        prompt. If any operation fails, nothing is written and its error is raised with
        ``index`` set to its position (``ValidationError.field`` reads
        ``ops[i]...``); ``index`` is ``None`` when the batch as a whole is refused
        (empty, more than 1000 operations)."""
        return [_batch_result(o) for o in await self._n.batch(_batch_ops(ops))]

    async def render(
        self,
        name: str,
        variables: Optional[Mapping[str, Any]] = None,
        *,
        label: Optional[str] = None,
        version: Optional[int] = None,
        split_key: Optional[str] = None,
    ) -> Rendered:
        """Resolve and render in one call (``split_key`` as in :meth:`get`). Includes
        (``{{> name@label }}``) are expanded; the result (a ``str`` or a list of
        messages) has a ``resolution`` attribute saying which version of each included
        prompt was used."""
        rendered, resolution = await self._n.render(
            name, _vars(variables), label, version, split_key
        )
        return _rendered(rendered, resolution)

    # the change log
    async def events(self, *, after: int = 0, limit: Optional[int] = None) -> EventPage:
        """The project's change log after the cursor ``after`` (a ``seq``; 0 for the
        start), oldest first: at most ``limit`` events (1 to 1000, default 100).
        Follow it with ``after=page.next`` until ``page.has_more`` is false; every
        write (prompt, version, label, key, credential and member changes) appears
        once, in commit order. :class:`GoneError` when the events after ``after`` are
        no longer retained: read the current state, then follow from :meth:`head`.
        A negative ``after`` is a :class:`ValidationError` on ``after``."""
        return EventPage._from(await self._n.events(after, limit))

    async def head(self) -> int:
        """The ``seq`` of the project's latest event (0 when nothing happened yet):
        ``events(after=head())`` returns only what happens from now on."""
        seq: int = await self._n.head()
        return seq

    # execution
    async def execute(
        self,
        name: str,
        variables: Optional[Mapping[str, Any]] = None,
        *,
        label: Optional[str] = None,
        version: Optional[int] = None,
        provider: Optional[str] = None,
        model: Optional[str] = None,
        params: Optional[Mapping[str, Any]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        stream: Optional[bool] = None,
        timeout_ms: Optional[int] = None,
        raise_on_error: bool = False,
        split_key: Optional[str] = None,
    ) -> Run:
        """Resolve, render, call the provider and record the run. A provider failure
        gives a ``failed`` run (or raises it with ``raise_on_error=True``). A label's
        release split is picked by ``split_key`` (as in :meth:`get`); the run records
        the version and the split."""
        opts = _exec_options(
            provider=provider, model=model, params=params, metadata=metadata,
            stream=stream, timeout_ms=timeout_ms, split_key=split_key,
        )
        result = await self._n.execute(name, _vars(variables), label, version, opts)
        return _execution(result, raise_on_error)

    async def submit(
        self,
        name: str,
        variables: Optional[Mapping[str, Any]] = None,
        *,
        label: Optional[str] = None,
        version: Optional[int] = None,
        provider: Optional[str] = None,
        model: Optional[str] = None,
        params: Optional[Mapping[str, Any]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        stream: Optional[bool] = None,
        timeout_ms: Optional[int] = None,
        split_key: Optional[str] = None,
    ) -> Run:
        """Record a ``pending`` run and return at once; workers (see
        :meth:`start_workers`, or a ``prompt-registry`` server on the same database)
        execute it."""
        opts = _exec_options(
            provider=provider, model=model, params=params, metadata=metadata,
            stream=stream, timeout_ms=timeout_ms, split_key=split_key,
        )
        return Run._from(await self._n.submit(name, _vars(variables), label, version, opts))

    async def start_workers(self, workers: int = 2) -> None:
        """Execute submitted runs in background tasks of this process."""
        await self._n.start_workers(workers)

    async def stop_workers(self) -> None:
        """Stop the background workers."""
        await self._n.stop_workers()

    # runs
    async def log_run(
        self,
        *,
        prompt: Optional[str] = None,
        version: Optional[int] = None,
        label: Optional[str] = None,
        provider: Optional[str] = None,
        model: Optional[str] = None,
        variables: Any = None,
        input: Any = None,
        output: Optional[str] = None,
        status: str = "completed",
        error: Union[RunError, Mapping[str, str], None] = None,
        latency_ms: Optional[int] = None,
        time_to_first_token_ms: Optional[int] = None,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        cache_read_tokens: Optional[int] = None,
        cache_write_tokens: Optional[int] = None,
        cost_usd: Union[Decimal, str, int, float, None] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        started_at: Optional[datetime] = None,
        completed_at: Optional[datetime] = None,
    ) -> Run:
        """Record a run made elsewhere (e.g. your own LLM call)."""
        fields = _run_fields(
            prompt, version, label, provider, model, variables, input, output, status,
            error, latency_ms, time_to_first_token_ms, input_tokens, output_tokens,
            cache_read_tokens, cache_write_tokens, cost_usd, metadata, started_at,
            completed_at,
        )
        return Run._from(await self._n.log_run(fields))

    async def log_runs(
        self, runs: Iterable[Mapping[str, Any]]
    ) -> List[Union[Run, PromptRegistryError]]:
        """Record many runs (each a dict of :meth:`log_run`'s keywords): one result per
        input, a :class:`Run` or the error that refused it."""
        return _logged(await self._n.log_runs([_log_fields(r) for r in runs]))

    async def runs(
        self,
        *,
        prompt: Optional[str] = None,
        version: Optional[int] = None,
        label: Optional[str] = None,
        status: Optional[str] = None,
        provider: Optional[str] = None,
        model: Optional[str] = None,
        since: Optional[datetime] = None,
        until: Optional[datetime] = None,
        order: str = "desc",
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Run]:
        """Runs matching the filters, newest first (``order="asc"`` for oldest)."""
        q = _run_query(prompt, version, label, status, provider, model, since, until, order, limit, cursor)
        return Page._from(await self._n.runs(q), Run._from)

    async def get_run(self, run_id: Union[str, uuid.UUID]) -> Run:
        """One run by id."""
        return Run._from(await self._n.get_run(_run_id(run_id)))

    @overload
    async def stats(
        self,
        name: Optional[str] = None,
        *,
        since: Optional[datetime] = None,
        until: Optional[datetime] = None,
        bucket: None = None,
    ) -> RunStats: ...

    @overload
    async def stats(
        self,
        name: Optional[str] = None,
        *,
        since: Optional[datetime] = None,
        until: Optional[datetime] = None,
        bucket: str,
    ) -> List[RunStats]: ...

    async def stats(
        self,
        name: Optional[str] = None,
        *,
        since: Optional[datetime] = None,
        until: Optional[datetime] = None,
        bucket: Optional[str] = None,
    ) -> Union[RunStats, List[RunStats]]:
        """Totals of a prompt's runs (of every run of the project when ``name`` is
        None): count, failed, error rate, latency percentiles, tokens, cost.

        With ``bucket`` (``"minute"``, ``"hour"`` or ``"day"``, UTC; needs ``since``;
        at most 10,000 buckets up to ``until`` or now) the answer is a series: one
        :class:`RunStats` per bucket that has runs, oldest first, with ``bucket`` its
        start. Buckets without runs are left out: fill the gaps when you plot them."""
        rows = await self._n.stats(_stats_query(name, since, until, None, bucket))
        if bucket is not None:
            return [RunStats._from(s) for s in rows]
        return _total(rows)

    async def stats_by(
        self,
        name: Optional[str],
        group_by: str,
        *,
        since: Optional[datetime] = None,
        until: Optional[datetime] = None,
        bucket: Optional[str] = None,
    ) -> List[RunStats]:
        """Stats per ``version``, ``label`` or ``model`` of a prompt's runs (of the
        project's when ``name`` is None); with ``bucket``, a series per group, ordered
        by bucket then group (see :meth:`stats`)."""
        q = _stats_query(name, since, until, group_by, bucket)
        return [RunStats._from(s) for s in await self._n.stats(q)]

    # stored provider credentials
    async def put_provider(
        self,
        name: str,
        kind: str,
        api_key: str,
        *,
        base_url: Optional[str] = None,
        default_params: Optional[Mapping[str, Any]] = None,
    ) -> StoredProvider:
        """Store (or replace) the provider credential ``name`` of the project:
        ``kind`` is ``openai``, ``anthropic``, ``gemini`` or ``openai_compatible``
        (which needs ``base_url``); ``default_params`` go under every call's
        (``model`` sets the default model). The key is sealed under the master key and
        never shown again; executions use it from the next call on. Needs
        ``master_key`` (or ``$PROMPT_REGISTRY_MASTER_KEY``). A remote registry raises
        :class:`UnsupportedError`: store its credentials on the server
        (``PUT /api/v1/providers/{name}`` with an admin key)."""
        fields: Dict[str, Any] = {"kind": kind, "api_key": api_key}
        if base_url is not None:
            fields["base_url"] = base_url
        if default_params is not None:
            fields["default_params"] = dict(default_params)
        return StoredProvider._from(await self._n.put_provider(name, fields))

    async def providers(self) -> List[StoredProvider]:
        """The project's stored provider credentials, by name, keys masked."""
        return [StoredProvider._from(p) for p in await self._n.providers()]

    async def delete_provider(self, name: str) -> None:
        """Delete the stored provider credential ``name`` (:class:`NotFoundError` if
        there is none)."""
        await self._n.delete_provider(name)

    # prompt tools
    async def analyze(
        self,
        template: Optional[Template] = None,
        *,
        prompt: Optional[str] = None,
        label: Optional[str] = None,
        version: Optional[int] = None,
        variables: Optional[Sequence[str]] = None,
        config: Optional[Mapping[str, Any]] = None,
        template_format: Optional[str] = None,
        critique: bool = True,
    ) -> Analysis:
        """Analyze a template, or a stored ``prompt``: variables, kind, length and a
        token estimate, lints with stable codes, and the tools model's critique
        (``critique.available`` is False, with the reason, when the model gives none;
        ``critique=False`` calls no model)."""
        req = analyze_request(
            template, prompt, label, version, variables, config, template_format, critique
        )
        return Analysis._from(await self._n.analyze(req))

    async def remix(
        self, template: Template, style: Style, *, template_format: str = "mustache"
    ) -> Remix:
        """Rewrite ``template`` in ``style`` (``"concise"``, ``"detailed"``, ``"formal"``,
        ``"friendly"``, ``"few_shot"``, ``"step_by_step"``, ``"json_output"`` or
        ``{"custom": "..."}``), keeping exactly its variables. :class:`ProviderError`
        when the model's rewrite stays unusable after one retry,
        :class:`UnavailableError` when the model is down or times out."""
        return Remix._from(await self._n.remix(remix_request(template, style, template_format)))

    async def create_from_goal(
        self,
        goal: str,
        *,
        audience: Optional[str] = None,
        constraints: Optional[Sequence[str]] = None,
        variables: Optional[Sequence[str]] = None,
        kind: Optional[str] = None,
        save_as: Optional[str] = None,
    ) -> Created:
        """Write a template (``kind`` ``"text"`` or ``"chat"``) for ``goal`` that uses
        exactly ``variables``; with ``save_as``, save it as version 1 of a new prompt
        (:class:`AlreadyExistsError` if the name is taken)."""
        req = create_request(goal, audience, constraints, variables, kind, save_as)
        return Created._from(await self._n.create_from_goal(req))

    async def optimize(
        self,
        name: str,
        *,
        label: Optional[str] = None,
        version: Optional[int] = None,
        goal: Optional[str] = None,
    ) -> Optimized:
        """Optimize a stored prompt (``label``, default ``production``, or ``version``)
        into a new version with the same variables; no label moves. The commit message
        records the source version and the rationale."""
        return Optimized._from(await self._n.optimize(name, optimize_request(label, version, goal)))
