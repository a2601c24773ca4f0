"""Policies: how strict a guard is, loaded from YAML and validated strictly.

A policy file is a YAML mapping. Unknown keys, wrong types and out-of-range
values are errors that name the file and the field; nothing silently falls back
to a default. ``extends`` inherits from a built-in policy or another file
(relative to the extending file); mappings merge key by key, the child winning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guardkit._resources import builtin_policy_dir
from guardkit.errors import PolicyError
from guardkit.verdict import CATEGORIES

__all__ = [
    "CategoryRule",
    "Debounce",
    "LongStream",
    "OnBlock",
    "Policy",
    "PromptCheck",
    "Thresholds",
    "builtin_policies",
    "load_policy",
]

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
Probability = float


class Thresholds(BaseModel):
    """Probability thresholds for the token (or prompt) judgement.

    A token is ``unsafe`` when p(unsafe) >= ``unsafe``; otherwise
    ``controversial`` when p(unsafe) + p(controversial) >= ``controversial``.
    """

    model_config = _STRICT
    unsafe: float = Field(0.5, ge=0.0, le=1.0)
    controversial: float = Field(0.5, ge=0.0, le=1.0)


class CategoryRule(BaseModel):
    """Per-category override: its own unsafe threshold and/or action."""

    model_config = _STRICT
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    action: Literal["halt", "flag", "allow"] | None = None


class Debounce(BaseModel):
    """When flagged tokens stop the stream.

    ``consecutive``: ``count`` flagged tokens in a row (Qwen3Guard-Stream's
    evaluation rule uses 2). ``cumulative``: ``count`` flagged tokens in all
    (SCM's delay-k rule); text from the first flagged token on is held back.
    """

    model_config = _STRICT
    rule: Literal["consecutive", "cumulative"] = "consecutive"
    count: int = Field(2, ge=1, le=1000)


class OnBlock(BaseModel):
    """What a guarded stream does once blocked: yield ``message`` or raise ``StreamBlocked``."""

    model_config = _STRICT
    mode: Literal["replace", "raise"] = "replace"
    message: str = "[response withheld by guardkit: it broke the content policy]"


class PromptCheck(BaseModel):
    """The check of the user's prompt, made before any response text is accepted."""

    model_config = _STRICT
    action: Literal["block", "flag", "allow"] = "block"
    thresholds: Thresholds = Thresholds()
    message: str = "[request declined by guardkit: it broke the content policy]"


class LongStream(BaseModel):
    """Responses longer than the model's max positions re-prefill the prompt plus a window."""

    model_config = _STRICT
    window_tokens: int = Field(256, ge=8, le=100_000)


class Policy(BaseModel):
    """A complete, validated guard policy (see ``policies/default.yaml``)."""

    model_config = _STRICT
    name: str = Field("custom", min_length=1)
    description: str = ""
    thresholds: Thresholds = Thresholds()
    controversial: Literal["strict", "loose"] = "loose"
    categories: dict[str, CategoryRule] = Field(default_factory=dict)
    debounce: Debounce = Debounce()
    release: Literal["judged", "passthrough"] = "judged"
    on_block: OnBlock = OnBlock()
    prompt: PromptCheck = PromptCheck()
    failure_mode: Literal["closed", "open"] = "closed"
    long_stream: LongStream = LongStream()

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: dict[str, CategoryRule]) -> dict[str, CategoryRule]:
        unknown = sorted(set(value) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown category {unknown[0]!r}; known: {', '.join(CATEGORIES)}")
        return value

    def category_rule(self, category: str | None) -> CategoryRule:
        if category is None:
            return _NO_RULE
        return self.categories.get(category, _NO_RULE)

    def to_yaml(self) -> str:
        """The policy as a self-contained YAML document (no ``extends``)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


_NO_RULE = CategoryRule()


def builtin_policies() -> dict[str, Path]:
    """Names and paths of the policies shipped with guardkit."""
    directory = builtin_policy_dir()
    return {p.stem: p for p in sorted(directory.glob("*.yaml"))}


def load_policy(policy: Policy | str | Path) -> Policy:
    """Return a :class:`Policy` from a ``Policy``, a built-in name or a YAML path.

    Raises:
        PolicyError: the file is missing, is not valid YAML, or fails validation.
    """
    if isinstance(policy, Policy):
        return policy
    if not isinstance(policy, (str, Path)):
        raise PolicyError(f"expected a Policy, a built-in policy name or a path, got {type(policy).__name__}")
    data, source = _resolve_document(policy, base_dir=Path.cwd(), chain=())
    return _validate(data, source)


def policy_from_dict(data: dict[str, Any], source: str = "<dict>") -> Policy:
    """Validate a policy given as a mapping (``extends`` is resolved from the working directory)."""
    data = _apply_extends(dict(data), source, Path.cwd(), chain=(source,))
    return _validate(data, source)


def _resolve_document(ref: str | Path, base_dir: Path, chain: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    path = _locate(ref, base_dir)
    source = str(path)
    if source in chain:
        raise PolicyError("circular 'extends' chain: " + " -> ".join([*chain, source]), source=source, field="extends")
    data = _read_yaml(path)
    data.setdefault("name", path.stem)
    data = _apply_extends(data, source, path.parent, chain=(*chain, source))
    return data, source


def _locate(ref: str | Path, base_dir: Path) -> Path:
    text = str(ref)
    builtins = builtin_policies()
    looks_like_name = isinstance(ref, str) and "/" not in text and "\\" not in text and not text.endswith((".yaml", ".yml"))
    if looks_like_name:
        if text in builtins:
            return builtins[text]
        raise PolicyError(f"no built-in policy named {text!r}; built-in: {', '.join(builtins)} (or give a path to a YAML file)")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise PolicyError("file not found", source=str(path))
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(f"invalid YAML{where}: {problem}", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read: {exc}", source=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(f"a policy must be a YAML mapping, got {type(data).__name__}", source=str(path))
    return data


def _apply_extends(data: dict[str, Any], source: str, base_dir: Path, chain: tuple[str, ...]) -> dict[str, Any]:
    parent_ref = data.pop("extends", None)
    if parent_ref is None:
        return data
    if not isinstance(parent_ref, str):
        raise PolicyError("must be a built-in policy name or a path", source=source, field="extends")
    try:
        parent, _ = _resolve_document(parent_ref, base_dir, chain)
    except PolicyError as exc:
        raise PolicyError(f"cannot load parent {parent_ref!r}: {exc}", source=source, field="extends") from None
    return _deep_merge(parent, data)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _validate(data: dict[str, Any], source: str) -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        raise PolicyError(message, source=source, field=field) from None
