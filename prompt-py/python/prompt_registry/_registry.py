"""``Registry`` (blocking) and ``AsyncRegistry`` (asyncio): the same methods.

Both wrap one native registry; the blocking one releases the GIL while it waits, so
other Python threads run meanwhile.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._errors import PromptRegistryError, ProviderError, UnavailableError, ValidationError
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
from ._models import (
    LabelMove,
    Page,
    Prompt,
    PromptVersion,
    Rendered,
    Run,
    RunError,
    RunStats,
    Template,
)

DEFAULT_CACHE_TTL_MS = 60_000


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: Marks an argument that was not given (``None`` means "clear it").
UNSET: Any = _Unset()


# -- argument builders shared by both classes ---------------------------------------


#: Where a remote registry's API key is read from when ``api_key`` is not given.
API_KEY_ENV = "PROMPT_REGISTRY_API_KEY"


def _check_url(url: object, api_key: Optional[str]) -> Tuple[str, Optional[str]]:
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    if api_key is not None and not isinstance(api_key, str):
        raise TypeError(f"api_key must be a str, not {type(api_key).__name__}")
    if url.startswith(("http://", "https://")):
        if api_key is None:
            api_key = os.environ.get(API_KEY_ENV)
        if not api_key:
            raise ValidationError(
                f"a remote registry needs an API key: pass api_key= or set {API_KEY_ENV}",
                field="api_key",
            )
    elif api_key is not None:
        if url.split(":", 1)[0].lower() in ("memory", "sqlite", "postgres", "postgresql"):
            raise ValidationError(
                "api_key is only for http(s):// URLs (a remote registry)", field="api_key"
            )
        api_key = None  # an unknown scheme: the URL is what is wrong, and is reported
    return url, api_key


def _check_project(project: object) -> Optional[str]:
    if project is not None and not isinstance(project, str):
        raise TypeError(f"project must be a str, not {type(project).__name__}")
    return project


def _fallback_version(name: str, fallback: object, template_format: str) -> PromptVersion:
    template = _template(fallback)
    variables: List[str] = _native.template_variables(template, template_format)
    return PromptVersion(
        id="",
        prompt=name,
        prompt_id="",
        version=0,
        kind="text" if isinstance(template, str) else "chat",
        template=template,
        template_format=template_format,
        variables=variables,
        config={},
        labels=[],
        commit_message=None,
        created_by=None,
        created_at=datetime.now(timezone.utc),
        is_fallback=True,
    )


def _ttl(cache: bool, cache_ttl_ms: int) -> Optional[int]:
    if not cache:
        return None
    if not isinstance(cache_ttl_ms, int) or cache_ttl_ms <= 0:
        raise ValueError("cache_ttl_ms must be a positive int")
    return cache_ttl_ms


def _iso(name: str, value: Optional[datetime]) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return value.isoformat()


def _template(template: object) -> Any:
    if isinstance(template, str):
        return template
    if isinstance(template, (list, tuple)):
        out = []
        for i, m in enumerate(template):
            if not isinstance(m, Mapping):
                raise TypeError(
                    f"template[{i}] must be a dict with 'role' and 'content', "
                    f"not {type(m).__name__}"
                )
            out.append(dict(m))
        return out
    raise TypeError(
        "template must be a str or a list of {'role': ..., 'content': ...} dicts, "
        f"not {type(template).__name__}"
    )


def _version_payload(
    template: object,
    config: Optional[Mapping[str, Any]],
    labels: Optional[Sequence[str]],
    commit_message: Optional[str],
    template_format: str,
) -> Dict[str, Any]:
    if isinstance(labels, str):
        raise TypeError("labels must be a list of str, not a str")
    return {
        "template": _template(template),
        "template_format": template_format,
        "config": dict(config) if config is not None else {},
        "labels": list(labels) if labels is not None else [],
        "commit_message": commit_message,
    }


def _vars(variables: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    if variables is None:
        return None
    if not isinstance(variables, Mapping):
        raise TypeError(f"variables must be a mapping, not {type(variables).__name__}")
    return dict(variables)


def _exec_options(**options: Any) -> Dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


def _cost(value: Union[Decimal, str, int, float, None]) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, str, int, float)):
        raise TypeError(f"cost_usd must be a Decimal, str or number, not {type(value).__name__}")
    return str(value)


def _run_fields(
    prompt: Optional[str],
    version: Optional[int],
    label: Optional[str],
    provider: Optional[str],
    model: Optional[str],
    variables: Any,
    input: Any,
    output: Optional[str],
    status: str,
    error: Union[RunError, Mapping[str, str], None],
    latency_ms: Optional[int],
    time_to_first_token_ms: Optional[int],
    input_tokens: Optional[int],
    output_tokens: Optional[int],
    cache_read_tokens: Optional[int],
    cache_write_tokens: Optional[int],
    cost_usd: Union[Decimal, str, int, float, None],
    metadata: Optional[Mapping[str, Any]],
    started_at: Optional[datetime],
    completed_at: Optional[datetime],
) -> Dict[str, Any]:
    if isinstance(error, RunError):
        error = error.to_dict()
    fields: Dict[str, Any] = {
        "prompt": prompt,
        "version": version,
        "label": label,
        "provider": provider,
        "model": model,
        "variables": variables,
        "input": input,
        "output": output,
        "status": status,
        "error": dict(error) if error is not None else None,
        "latency_ms": latency_ms,
        "time_to_first_token_ms": time_to_first_token_ms,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": cache_write_tokens,
        "cost_usd": _cost(cost_usd),
        "metadata": dict(metadata) if metadata is not None else None,
        "started_at": _iso("started_at", started_at),
        "completed_at": _iso("completed_at", completed_at),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _run_query(
    prompt: Optional[str],
    version: Optional[int],
    label: Optional[str],
    status: Optional[str],
    provider: Optional[str],
    model: Optional[str],
    since: Optional[datetime],
    until: Optional[datetime],
    order: str,
    limit: Optional[int],
    cursor: Optional[str],
) -> Dict[str, Any]:
    return {
        "prompt": prompt,
        "version": version,
        "label": label,
        "status": status,
        "provider": provider,
        "model": model,
        "since": _iso("since", since),
        "until": _iso("until", until),
        "order": order,
        "page": {"limit": limit, "cursor": cursor},
    }


def _stats_query(
    name: str, since: Optional[datetime], until: Optional[datetime], group_by: Optional[str]
) -> Dict[str, Any]:
    return {
        "prompt": name,
        "since": _iso("since", since),
        "until": _iso("until", until),
        "group_by": group_by,
    }


def _total(stats: List[Dict[str, Any]]) -> RunStats:
    if stats:
        return RunStats._from(stats[0])
    return RunStats._from(
        {"count": 0, "failed": 0, "error_rate": 0.0, "input_tokens": 0, "output_tokens": 0}
    )


def _run_id(run_id: Union[str, uuid.UUID]) -> str:
    if isinstance(run_id, uuid.UUID):
        return str(run_id)
    if not isinstance(run_id, str):
        raise TypeError(f"run id must be a str or uuid.UUID, not {type(run_id).__name__}")
    return run_id


def _execution(result: Dict[str, Any], raise_on_error: bool) -> Run:
    run = Run._from(result["run"])
    err = result.get("error")
    if raise_on_error and err is not None:
        if isinstance(err, ProviderError):
            err.run = run
        raise err
    return run


def _logged(results: List[Any]) -> List[Union[Run, PromptRegistryError]]:
    return [r if isinstance(r, PromptRegistryError) else Run._from(r) for r in results]


class Registry:
    """A prompt registry, blocking. ``Registry.open(url)`` to get one."""

    def __init__(self, native: Any) -> None:
        if not isinstance(native, _native.NativeRegistry) or native.is_async:
            raise TypeError("use Registry.open(url)")
        self._n = native
        # Immutable version objects, reused by get() (see NativeRegistry.resolve_cached).
        self._versions: Dict[str, PromptVersion] = {}

    @classmethod
    def open(
        cls,
        url: str,
        *,
        project: Optional[str] = None,
        cache: bool = True,
        cache_ttl_ms: int = DEFAULT_CACHE_TTL_MS,
        api_key: Optional[str] = None,
    ) -> "Registry":
        """Open ``memory://``, ``sqlite:///path.db`` (created if missing; migrations
        applied), ``postgres://...``, or a server at ``http(s)://host:port`` (remote).

        Embedded: ``project`` defaults to ``default`` (created if missing); providers
        come from the environment (``mock`` is always there); ``cache`` keeps resolved
        versions in process for ``cache_ttl_ms``.

        Remote: ``api_key`` (or ``$PROMPT_REGISTRY_API_KEY``) is required and decides the
        project (``project``, if given, must be the key's). Executions run on the server.
        ``cache`` keeps label lookups for ``cache_ttl_ms``, then serves them stale while
        refreshing in the background, so a server that goes down does not break prompts
        already fetched. A server that is down at open is not an error; a refused key
        is (:class:`AuthError`)."""
        url, api_key = _check_url(url, api_key)
        native = _native.open(url, _check_project(project), _ttl(cache, cache_ttl_ms), api_key)
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
            return f"Registry(url={self.remote_url!r})"
        return f"Registry(project={self.project!r})"

    # prompts
    def create_prompt(
        self, name: str, *, description: Optional[str] = None, tags: Optional[Sequence[str]] = None
    ) -> Prompt:
        """Create a prompt; :class:`AlreadyExistsError` if the name is taken."""
        return Prompt._from(self._n.create_prompt(name, description, _tags(tags)))

    def get_prompt(self, name: str) -> Prompt:
        """A prompt by name, with its labels."""
        return Prompt._from(self._n.get_prompt(name))

    def list_prompts(
        self,
        *,
        tag: Optional[str] = None,
        name_prefix: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Prompt]:
        """Live (not archived) prompts, by name."""
        return Page._from(self._n.list_prompts(tag, name_prefix, limit, cursor), Prompt._from)

    def update_prompt(
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
        return Prompt._from(self._n.update_prompt(name, _update(description, tags), if_match))

    def archive(self, name: str) -> None:
        """Archive a prompt (hidden from lists and lookups by name)."""
        self._n.archive_prompt(name)

    archive_prompt = archive

    # versions and labels
    def create_version(
        self,
        name: str,
        template: Template,
        *,
        config: Optional[Mapping[str, Any]] = None,
        labels: Optional[Sequence[str]] = None,
        commit_message: Optional[str] = None,
        template_format: str = "mustache",
    ) -> PromptVersion:
        """Create the next version (and the prompt if missing); ``latest`` and the
        given ``labels`` move to it atomically."""
        payload = _version_payload(template, config, labels, commit_message, template_format)
        return PromptVersion._from(self._n.create_version(name, payload))

    def list_versions(
        self, name: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[PromptVersion]:
        """Versions, newest first."""
        return Page._from(self._n.list_versions(name, limit, cursor), PromptVersion._from)

    def get(
        self,
        name: str,
        *,
        label: Optional[str] = None,
        version: Optional[int] = None,
        fallback: Optional[Template] = None,
        fallback_format: str = "mustache",
    ) -> PromptVersion:
        """Resolve a version: by ``label`` (default ``production``) or ``version``.

        ``fallback`` (a template, text or chat) is returned as a version with
        ``is_fallback=True`` (and ``version == 0``) when the registry cannot be reached
        and nothing is cached, instead of raising :class:`UnavailableError`. Any other
        error (a missing prompt, a refused key) is still raised."""
        try:
            v: PromptVersion = self._n.resolve_cached(
                name, label, version, self._versions, PromptVersion._from
            )
        except UnavailableError:
            if fallback is None:
                raise
            return _fallback_version(name, fallback, fallback_format)
        return v

    def get_version(self, name: str, version: int) -> PromptVersion:
        """One version by number."""
        return self.get(name, version=version)

    def set_label(
        self, name: str, label: str, version: int, *, actor: Optional[str] = None
    ) -> LabelMove:
        """Point ``label`` at ``version`` (audited). ``latest`` cannot be set."""
        return LabelMove._from(self._n.set_label(name, label, version, actor))

    def delete_label(self, name: str, label: str, *, actor: Optional[str] = None) -> LabelMove:
        """Remove a label (audited)."""
        return LabelMove._from(self._n.delete_label(name, label, actor))

    def label_history(
        self,
        name: str,
        label: str = "production",
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[LabelMove]:
        """Moves of a label, newest first."""
        return Page._from(self._n.label_history(name, label, limit, cursor), LabelMove._from)

    def render(
        self,
        name: str,
        variables: Optional[Mapping[str, Any]] = None,
        *,
        label: Optional[str] = None,
        version: Optional[int] = None,
    ) -> Rendered:
        """Resolve and render in one call."""
        result: Rendered = self._n.render(name, _vars(variables), label, version)
        return result

    # execution
    def execute(
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
    ) -> Run:
        """Resolve, render, call the provider and record the run. A provider failure
        gives a ``failed`` run (or raises it with ``raise_on_error=True``)."""
        opts = _exec_options(
            provider=provider, model=model, params=params, metadata=metadata,
            stream=stream, timeout_ms=timeout_ms,
        )
        result = self._n.execute(name, _vars(variables), label, version, opts)
        return _execution(result, raise_on_error)

    def submit(
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
    ) -> Run:
        """Record a ``pending`` run and return at once; workers (see
        :meth:`start_workers`, or a ``prompt-registry`` server on the same database)
        execute it."""
        opts = _exec_options(
            provider=provider, model=model, params=params, metadata=metadata,
            stream=stream, timeout_ms=timeout_ms,
        )
        return Run._from(self._n.submit(name, _vars(variables), label, version, opts))

    def start_workers(self, workers: int = 2) -> None:
        """Execute submitted runs in background tasks of this process."""
        self._n.start_workers(workers)

    def stop_workers(self) -> None:
        """Stop the background workers."""
        self._n.stop_workers()

    # runs
    def log_run(
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
        return Run._from(self._n.log_run(fields))

    def log_runs(self, runs: Iterable[Mapping[str, Any]]) -> List[Union[Run, PromptRegistryError]]:
        """Record many runs (each a dict of :meth:`log_run`'s keywords): one result per
        input, a :class:`Run` or the error that refused it."""
        return _logged(self._n.log_runs([_log_fields(r) for r in runs]))

    def runs(
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
        return Page._from(self._n.runs(q), Run._from)

    def get_run(self, run_id: Union[str, uuid.UUID]) -> Run:
        """One run by id."""
        return Run._from(self._n.get_run(_run_id(run_id)))

    def stats(
        self, name: str, *, since: Optional[datetime] = None, until: Optional[datetime] = None
    ) -> RunStats:
        """Totals of a prompt's runs: count, failed, error rate, latency percentiles,
        tokens, cost."""
        return _total(self._n.stats(_stats_query(name, since, until, None)))

    def stats_by(
        self,
        name: str,
        group_by: str,
        *,
        since: Optional[datetime] = None,
        until: Optional[datetime] = None,
    ) -> List[RunStats]:
        """Stats per ``version``, ``label`` or ``model``."""
        return [RunStats._from(s) for s in self._n.stats(_stats_query(name, since, until, group_by))]

    # prompt tools
    def analyze(
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
        return Analysis._from(self._n.analyze(req))

    def remix(
        self, template: Template, style: Style, *, template_format: str = "mustache"
    ) -> Remix:
        """Rewrite ``template`` in ``style`` (``"concise"``, ``"detailed"``, ``"formal"``,
        ``"friendly"``, ``"few_shot"``, ``"step_by_step"``, ``"json_output"`` or
        ``{"custom": "..."}``), keeping exactly its variables. :class:`ProviderError`
        when the model's rewrite stays unusable after one retry,
        :class:`UnavailableError` when the model is down or times out."""
        return Remix._from(self._n.remix(remix_request(template, style, template_format)))

    def create_from_goal(
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
        return Created._from(self._n.create_from_goal(req))

    def optimize(
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
        return Optimized._from(self._n.optimize(name, optimize_request(label, version, goal)))


class AsyncRegistry:
    """A prompt registry for asyncio: every I/O method is a coroutine.
    ``await AsyncRegistry.open(url)`` to get one."""

    def __init__(self, native: Any) -> None:
        if not isinstance(native, _native.NativeRegistry) or not native.is_async:
            raise TypeError("use await AsyncRegistry.open(url)")
        self._n = native
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
    ) -> "AsyncRegistry":
        """See :meth:`Registry.open`."""
        url, api_key = _check_url(url, api_key)
        native = await _native.open_async(
            url, _check_project(project), _ttl(cache, cache_ttl_ms), api_key
        )
        return cls(native)

    @property
    def remote_url(self) -> Optional[str]:
        """See :attr:`Registry.remote_url`."""
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

    async def create_prompt(
        self, name: str, *, description: Optional[str] = None, tags: Optional[Sequence[str]] = None
    ) -> Prompt:
        """See :meth:`Registry.create_prompt`."""
        return Prompt._from(await self._n.create_prompt(name, description, _tags(tags)))

    async def get_prompt(self, name: str) -> Prompt:
        """See :meth:`Registry.get_prompt`."""
        return Prompt._from(await self._n.get_prompt(name))

    async def list_prompts(
        self,
        *,
        tag: Optional[str] = None,
        name_prefix: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Prompt]:
        """See :meth:`Registry.list_prompts`."""
        return Page._from(await self._n.list_prompts(tag, name_prefix, limit, cursor), Prompt._from)

    async def update_prompt(
        self,
        name: str,
        *,
        description: Optional[str] = UNSET,
        tags: Optional[Sequence[str]] = UNSET,
        if_match: Optional[str] = None,
    ) -> Prompt:
        """See :meth:`Registry.update_prompt`."""
        return Prompt._from(await self._n.update_prompt(name, _update(description, tags), if_match))

    async def archive(self, name: str) -> None:
        """See :meth:`Registry.archive`."""
        await self._n.archive_prompt(name)

    archive_prompt = archive

    async def create_version(
        self,
        name: str,
        template: Template,
        *,
        config: Optional[Mapping[str, Any]] = None,
        labels: Optional[Sequence[str]] = None,
        commit_message: Optional[str] = None,
        template_format: str = "mustache",
    ) -> PromptVersion:
        """See :meth:`Registry.create_version`."""
        payload = _version_payload(template, config, labels, commit_message, template_format)
        return PromptVersion._from(await self._n.create_version(name, payload))

    async def list_versions(
        self, name: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[PromptVersion]:
        """See :meth:`Registry.list_versions`."""
        return Page._from(await self._n.list_versions(name, limit, cursor), PromptVersion._from)

    async def get(
        self,
        name: str,
        *,
        label: Optional[str] = None,
        version: Optional[int] = None,
        fallback: Optional[Template] = None,
        fallback_format: str = "mustache",
    ) -> PromptVersion:
        """See :meth:`Registry.get`."""
        try:
            v: PromptVersion = await self._n.resolve_cached(
                name, label, version, self._versions, PromptVersion._from
            )
        except UnavailableError:
            if fallback is None:
                raise
            return _fallback_version(name, fallback, fallback_format)
        return v

    async def get_version(self, name: str, version: int) -> PromptVersion:
        """See :meth:`Registry.get_version`."""
        return await self.get(name, version=version)

    async def set_label(
        self, name: str, label: str, version: int, *, actor: Optional[str] = None
    ) -> LabelMove:
        """See :meth:`Registry.set_label`."""
        return LabelMove._from(await self._n.set_label(name, label, version, actor))

    async def delete_label(self, name: str, label: str, *, actor: Optional[str] = None) -> LabelMove:
        """See :meth:`Registry.delete_label`."""
        return LabelMove._from(await self._n.delete_label(name, label, actor))

    async def label_history(
        self,
        name: str,
        label: str = "production",
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[LabelMove]:
        """See :meth:`Registry.label_history`."""
        return Page._from(await self._n.label_history(name, label, limit, cursor), LabelMove._from)

    async def render(
        self,
        name: str,
        variables: Optional[Mapping[str, Any]] = None,
        *,
        label: Optional[str] = None,
        version: Optional[int] = None,
    ) -> Rendered:
        """See :meth:`Registry.render`."""
        result: Rendered = await self._n.render(name, _vars(variables), label, version)
        return result

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
    ) -> Run:
        """See :meth:`Registry.execute`."""
        opts = _exec_options(
            provider=provider, model=model, params=params, metadata=metadata,
            stream=stream, timeout_ms=timeout_ms,
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
    ) -> Run:
        """See :meth:`Registry.submit`."""
        opts = _exec_options(
            provider=provider, model=model, params=params, metadata=metadata,
            stream=stream, timeout_ms=timeout_ms,
        )
        return Run._from(await self._n.submit(name, _vars(variables), label, version, opts))

    async def start_workers(self, workers: int = 2) -> None:
        """See :meth:`Registry.start_workers`."""
        await self._n.start_workers(workers)

    async def stop_workers(self) -> None:
        """See :meth:`Registry.stop_workers`."""
        await self._n.stop_workers()

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
        """See :meth:`Registry.log_run`."""
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
        """See :meth:`Registry.log_runs`."""
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
        """See :meth:`Registry.runs`."""
        q = _run_query(prompt, version, label, status, provider, model, since, until, order, limit, cursor)
        return Page._from(await self._n.runs(q), Run._from)

    async def get_run(self, run_id: Union[str, uuid.UUID]) -> Run:
        """See :meth:`Registry.get_run`."""
        return Run._from(await self._n.get_run(_run_id(run_id)))

    async def stats(
        self, name: str, *, since: Optional[datetime] = None, until: Optional[datetime] = None
    ) -> RunStats:
        """See :meth:`Registry.stats`."""
        return _total(await self._n.stats(_stats_query(name, since, until, None)))

    async def stats_by(
        self,
        name: str,
        group_by: str,
        *,
        since: Optional[datetime] = None,
        until: Optional[datetime] = None,
    ) -> List[RunStats]:
        """See :meth:`Registry.stats_by`."""
        return [RunStats._from(s) for s in await self._n.stats(_stats_query(name, since, until, group_by))]

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
        """See :meth:`Registry.analyze`."""
        req = analyze_request(
            template, prompt, label, version, variables, config, template_format, critique
        )
        return Analysis._from(await self._n.analyze(req))

    async def remix(
        self, template: Template, style: Style, *, template_format: str = "mustache"
    ) -> Remix:
        """See :meth:`Registry.remix`."""
        req = remix_request(template, style, template_format)
        return Remix._from(await self._n.remix(req))

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
        """See :meth:`Registry.create_from_goal`."""
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
        """See :meth:`Registry.optimize`."""
        req = optimize_request(label, version, goal)
        return Optimized._from(await self._n.optimize(name, req))


def _tags(tags: Optional[Sequence[str]]) -> Optional[List[str]]:
    if tags is None:
        return None
    if isinstance(tags, str):
        raise TypeError("tags must be a list of str, not a str")
    return list(tags)


def _update(description: Any, tags: Any) -> Dict[str, Any]:
    update: Dict[str, Any] = {}
    if description is not UNSET:
        update["description"] = description
    if tags is not UNSET:
        update["tags"] = _tags(tags)
    return update


_LOG_KEYS = (
    "prompt", "version", "label", "provider", "model", "variables", "input", "output",
    "status", "error", "latency_ms", "time_to_first_token_ms", "input_tokens",
    "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd", "metadata",
    "started_at", "completed_at",
)


def _log_fields(run: Mapping[str, Any]) -> Dict[str, Any]:
    if not isinstance(run, Mapping):
        raise TypeError(f"each run must be a mapping, not {type(run).__name__}")
    unknown = set(run) - set(_LOG_KEYS)
    if unknown:
        raise TypeError(f"unknown run field(s): {', '.join(sorted(unknown))}")
    args: Dict[str, Any] = {k: run.get(k) for k in _LOG_KEYS}
    if args["status"] is None:
        args["status"] = "completed"
    return _run_fields(**args)
