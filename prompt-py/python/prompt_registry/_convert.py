"""What both registry classes send to the native module and make of its answers:
argument checks and payload builders, result conversions. Shared by ``AsyncRegistry``
(``_async_registry.py``) and the ``Registry`` generated from it (``_registry.py``)."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._errors import PromptRegistryError, ProviderError, ValidationError
from ._models import PromptVersion, Run, RunError, RunStats

DEFAULT_CACHE_TTL_MS = 60_000


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: Marks an argument that was not given (``None`` means "clear it").
UNSET: Any = _Unset()


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


def _credential(api_key: Optional[str], token: Optional[str], project: object) -> Optional[str]:
    """The bearer credential of a remote registry: an API key, or a user access token
    (which needs the project named)."""
    if token is None:
        return api_key
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, not {type(token).__name__}")
    if api_key is not None:
        raise ValidationError("pass api_key= or token=, not both", field="token")
    if not token.startswith("eyJ") or token.count(".") != 2:
        raise ValidationError(
            "is not a user access token (a JWT from /api/auth/login); API keys go in api_key=",
            field="token",
        )
    if project is None:
        raise ValidationError(
            "is required with token= (ORG/NAME, or NAME in the organization 'default')",
            field="project",
        )
    return token


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
    parent_version: Optional[int] = None,
) -> Dict[str, Any]:
    if isinstance(labels, str):
        raise TypeError("labels must be a list of str, not a str")
    payload: Dict[str, Any] = {
        "template": _template(template),
        "template_format": template_format,
        "config": dict(config) if config is not None else {},
        "labels": list(labels) if labels is not None else [],
        "commit_message": commit_message,
    }
    if parent_version is not None:
        payload["parent_version"] = parent_version
    return payload


def _batch_ops(ops: object) -> List[Dict[str, Any]]:
    """The operations of a batch as the list of dicts the native module parses."""
    if isinstance(ops, (str, bytes, Mapping)) or not isinstance(ops, Sequence):
        raise TypeError(f"ops must be a list of dicts, not {type(ops).__name__}")
    out = []
    for i, op in enumerate(ops):
        if not isinstance(op, Mapping):
            raise TypeError(f"ops[{i}] must be a dict, not {type(op).__name__}")
        out.append(dict(op))
    return out


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
    name: Optional[str],
    since: Optional[datetime],
    until: Optional[datetime],
    group_by: Optional[str],
    bucket: Optional[str] = None,
) -> Dict[str, Any]:
    return {
        "prompt": name,
        "since": _iso("since", since),
        "until": _iso("until", until),
        "group_by": group_by,
        "bucket": bucket,
    }


def _total(stats: List[Dict[str, Any]]) -> RunStats:
    if stats:
        return RunStats._from(stats[0])
    return RunStats._from(
        {"count": 0, "failed": 0, "error_rate": 0.0, "input_tokens": 0, "output_tokens": 0}
    )


def _diff_selector(field: str, value: object) -> str:
    """A ``diff`` side as the text the native side parses: a version number (``int``)
    or a label name (``str``); a bad value is refused there, naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(
            f"{field} must be a version number (int) or a label (str), not {type(value).__name__}"
        )
    return str(value)


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
