"""Typed results of the prompt tools: ``analyze``, ``remix``, ``create_from_goal`` and
``optimize`` (see ``Registry``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Union

from ._convert import _template as _check_template
from ._models import PromptVersion, Template, _Model, _template

#: A remix style: ``"concise"``, ``"detailed"``, ``"formal"``, ``"friendly"``,
#: ``"few_shot"``, ``"step_by_step"``, ``"json_output"``, or ``{"custom": "..."}``.
Style = Union[str, Mapping[str, str]]

STYLES = ("concise", "detailed", "formal", "friendly", "few_shot", "step_by_step", "json_output")


@dataclass(frozen=True)
class Lint(_Model):
    """One static finding: a stable ``code``, a ``severity`` (``error``, ``warning``,
    ``info``), a message saying what to do, and where (``template``,
    ``template[2].content``, ``variables``)."""

    code: str
    severity: str
    message: str
    location: Optional[str]

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Lint":
        return cls(
            code=d["code"], severity=d["severity"], message=d["message"],
            location=d.get("location"),
        )


@dataclass(frozen=True)
class Length(_Model):
    """Characters of the template and an estimate of its tokens (``tokenizer`` says
    how it is estimated)."""

    chars: int
    tokens: int
    tokenizer: str

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Length":
        return cls(chars=d["chars"], tokens=d["tokens"], tokenizer=d["tokenizer"])


@dataclass(frozen=True)
class Score(_Model):
    """A score from 1 (poor) to 10 (excellent) and why."""

    score: int
    reason: str

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Score":
        return cls(score=d["score"], reason=d["reason"])


@dataclass(frozen=True)
class Critique(_Model):
    """The tools model's critique, or (``available`` False) why there is none."""

    available: bool
    reason: Optional[str]
    clarity: Optional[Score]
    specificity: Optional[Score]
    structure: Optional[Score]
    suggestions: List[str]
    model: Optional[str]
    runs: List[str]

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Critique":
        def score(key: str) -> Optional[Score]:
            v = d.get(key)
            return Score._from(v) if v else None

        return cls(
            available=bool(d["available"]),
            reason=d.get("reason"),
            clarity=score("clarity"),
            specificity=score("specificity"),
            structure=score("structure"),
            suggestions=list(d.get("suggestions") or []),
            model=d.get("model"),
            runs=list(d.get("runs") or []),
        )


@dataclass(frozen=True)
class Analysis(_Model):
    """The result of ``analyze``: the static report and the critique."""

    source: Optional[Dict[str, Any]]
    kind: str
    template_format: str
    variables: List[str]
    messages: int
    length: Length
    lints: List[Lint]
    critique: Critique

    @property
    def codes(self) -> List[str]:
        """The codes of the lints, in order (errors first)."""
        return [lint.code for lint in self.lints]

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Analysis":
        return cls(
            source=d.get("source"),
            kind=d["kind"],
            template_format=d["template_format"],
            variables=list(d["variables"]),
            messages=d["messages"],
            length=Length._from(d["length"]),
            lints=[Lint._from(x) for x in d["lints"]],
            critique=Critique._from(d["critique"]),
        )


@dataclass(frozen=True)
class Remix(_Model):
    """The result of ``remix``: the rewritten template (same variables and kind)."""

    template: Template
    kind: str
    template_format: str
    variables: List[str]
    style: str
    rationale: str
    model: str
    runs: List[str]

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Remix":
        return cls(
            template=_template(d["template"]), kind=d["kind"],
            template_format=d["template_format"], variables=list(d["variables"]),
            style=d["style"], rationale=d["rationale"], model=d["model"],
            runs=list(d["runs"]),
        )


@dataclass(frozen=True)
class Created(_Model):
    """The result of ``create_from_goal``; ``saved`` is version 1 of the new prompt
    when ``save_as`` was given."""

    template: Template
    kind: str
    template_format: str
    variables: List[str]
    rationale: str
    model: str
    runs: List[str]
    saved: Optional[PromptVersion]

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Created":
        saved = d.get("saved")
        return cls(
            template=_template(d["template"]), kind=d["kind"],
            template_format=d["template_format"], variables=list(d["variables"]),
            rationale=d["rationale"], model=d["model"], runs=list(d["runs"]),
            saved=PromptVersion._from(saved) if saved else None,
        )


@dataclass(frozen=True)
class Optimized(_Model):
    """The result of ``optimize``: the new version and where it came from."""

    version: PromptVersion
    source_version: int
    rationale: str
    model: str
    runs: List[str]

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> "Optimized":
        return cls(
            version=PromptVersion._from(d["version"]), source_version=d["source_version"],
            rationale=d["rationale"], model=d["model"], runs=list(d["runs"]),
        )


def _style(style: object) -> Any:
    if isinstance(style, str):
        return style
    if isinstance(style, Mapping):
        return dict(style)
    raise TypeError(
        f"style must be a str ({', '.join(STYLES)}) or {{'custom': '...'}}, "
        f"not {type(style).__name__}"
    )


def _str_list(name: str, value: Any) -> Optional[List[str]]:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"{name} must be a list of str, not a str")
    return list(value)


def analyze_request(
    template: Any, prompt: Optional[str], label: Optional[str], version: Optional[int],
    variables: Any, config: Optional[Mapping[str, Any]], template_format: Optional[str],
    critique: bool,
) -> Dict[str, Any]:
    req: Dict[str, Any] = {
        "template": _check_template(template) if template is not None else None,
        "prompt": prompt,
        "label": label,
        "version": version,
        "variables": _str_list("variables", variables),
        "config": dict(config) if config is not None else None,
        "template_format": template_format,
        "critique": critique,
    }
    return {k: v for k, v in req.items() if v is not None}


def remix_request(template: Any, style: Style, template_format: str) -> Dict[str, Any]:
    return {
        "template": _check_template(template),
        "style": _style(style),
        "template_format": template_format,
    }


def create_request(
    goal: str, audience: Optional[str], constraints: Any, variables: Any,
    kind: Optional[str], save_as: Optional[str],
) -> Dict[str, Any]:
    req: Dict[str, Any] = {
        "goal": goal,
        "audience": audience,
        "constraints": _str_list("constraints", constraints),
        "variables": _str_list("variables", variables),
        "kind": kind,
        "save_as": save_as,
    }
    return {k: v for k, v in req.items() if v is not None}


def optimize_request(
    label: Optional[str], version: Optional[int], goal: Optional[str]
) -> Dict[str, Any]:
    req: Dict[str, Any] = {"label": label, "version": version, "goal": goal}
    return {k: v for k, v in req.items() if v is not None}
