"""Policies: how strict a guard is, loaded from YAML and validated strictly.

A policy file is a YAML mapping. Unknown keys, wrong types and out-of-range
values are errors that name the file and the field; nothing silently falls back
to a default. ``extends`` inherits from a built-in policy or another file
(relative to the extending file); mappings merge key by key, the child winning.
"""

from __future__ import annotations

import difflib
import os
import warnings
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from guardkit._resources import builtin_policy_dir
from guardkit.errors import PolicyError
from guardkit.verdict import CATEGORIES

__all__ = [
    "AuditSettings",
    "CategoryRule",
    "ChannelRule",
    "Channels",
    "Debounce",
    "LongStream",
    "OnBlock",
    "Policy",
    "PromptCheck",
    "ReplyCheck",
    "Thresholds",
    "builtin_policies",
    "load_policy",
]

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
Probability = float

#: A policy file larger than this is refused (a real policy is a few hundred bytes).
MAX_POLICY_BYTES = 256 * 1024
#: Deepest nesting of mappings/lists a policy document may have (the schema itself needs 4).
MAX_POLICY_DEPTH = 16
#: Longest ``extends`` chain.
MAX_EXTENDS_DEPTH = 16


class Thresholds(BaseModel):
    """Probability thresholds for the token (or prompt) judgement.

    A token is ``unsafe`` when p(unsafe) >= ``unsafe``; otherwise
    ``controversial`` when p(unsafe) + p(controversial) >= ``controversial``.
    """

    model_config = _STRICT
    unsafe: float = Field(0.5, ge=0.0, le=1.0)
    controversial: float = Field(0.5, ge=0.0, le=1.0)


class CategoryRule(BaseModel):
    """Per-category override: its own unsafe threshold, action and handling of controversial.

    ``action`` is ``block`` (the token counts toward the debounce that blocks),
    ``flag`` or ``allow``, the same words as ``prompt.action``. The old word
    ``halt`` is still read as ``block``, with a ``DeprecationWarning``.
    ``controversial`` overrides the policy's ``controversial`` for this category
    only: a healthcare policy can treat a controversial self-harm verdict as
    harmful (and show its help message) while staying loose on medical advice.
    """

    model_config = _STRICT
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    action: Literal["block", "flag", "allow"] | None = None
    controversial: Literal["strict", "loose"] | None = None

    @field_validator("action", mode="before")
    @classmethod
    def _legacy_halt(cls, value: object) -> object:
        if value == "halt":
            warnings.warn("policy categories: action 'halt' is now spelled 'block'", DeprecationWarning, stacklevel=2)
            return "block"
        return value


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
    """What a guarded stream does once blocked: yield ``message`` or raise ``StreamBlocked``.

    ``separator`` is yielded just before the message when some response text
    was already released (so the message is not glued to the last word); an
    empty string turns it off.
    """

    model_config = _STRICT
    mode: Literal["replace", "raise"] = "replace"
    message: str = "[response withheld by guardkit: it broke the content policy]"
    separator: str = Field("\n", max_length=16)


class PromptCheck(BaseModel):
    """The check of the user's prompt, made before any response text is accepted."""

    model_config = _STRICT
    action: Literal["block", "flag", "allow"] = "block"
    thresholds: Thresholds = Thresholds()
    message: str = "[request declined by guardkit: it broke the content policy]"


class ReplyCheck(BaseModel):
    """The reply check: the bundle's classifier judges the reply so far, when the bundle has one.

    A bundle whose classifier also judges replies (manifest
    ``prompt_model.reply_check``) reads the whole reply so far at each sentence
    end, and at least every ``max_hold_tokens`` guard tokens, besides the stream
    model's per-token judgement. ``action``: ``block`` holds the text since the
    last check until the next check passes (so a harmful sentence is never
    released) and blocks from its start when a check fails; ``flag`` reports it
    and holds nothing; ``allow`` turns the check off. ``thresholds``: the
    check's own (default: the policy's response thresholds). Category rules and
    ``controversial`` apply as to the stream's tokens.
    """

    model_config = _STRICT
    action: Literal["block", "flag", "allow"] = "block"
    thresholds: Thresholds | None = None
    max_hold_tokens: int = Field(48, ge=4, le=96)


class ChannelRule(BaseModel):
    """How one kind of text in a provider stream is guarded (see :class:`Channels`).

    ``judged``: the channel's text is judged before it is shown (the default);
    ``false`` shows it unjudged (an explicit opt-out, refused for reasoning).
    ``shown``: ``false`` drops the channel's text: never shown, so never judged.
    ``thresholds``: this channel's own thresholds (default: the policy's).
    ``on_block``: ``halt`` (the default) ends the whole response (a chat
    choice); ``drop`` stops only this channel, the response goes on;
    ``replace`` stops only this channel and shows ``message`` (default: the
    policy's ``on_block.message``) in it instead.
    """

    model_config = _STRICT
    judged: bool = True
    shown: bool = True
    thresholds: Thresholds | None = None
    on_block: Literal["halt", "drop", "replace"] = "halt"
    message: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ChannelRule:
        if self.thresholds is not None and not (self.judged and self.shown):
            raise ValueError("thresholds apply only to a channel that is judged and shown")
        if self.message is not None and self.on_block != "replace":
            raise ValueError("message is shown only with on_block: replace")
        return self


class Channels(BaseModel):
    """Per channel kind of a provider stream: ``answer`` (also refusals), ``reasoning``, ``tool_arguments``.

    Read by the provider adapters (:mod:`guardkit.adapters`) and the LangChain
    guarded model; a plain text stream (:meth:`Guard.stream`) is all answer and
    uses the policy's top-level settings. Reasoning text is never shown
    unjudged: ``reasoning: {judged: false}`` is refused (hide it with ``shown: false``).
    """

    model_config = _STRICT
    answer: ChannelRule = ChannelRule()
    reasoning: ChannelRule = ChannelRule()
    tool_arguments: ChannelRule = ChannelRule()

    @field_validator("reasoning")
    @classmethod
    def _reasoning_never_unjudged(cls, value: ChannelRule) -> ChannelRule:
        if value.shown and not value.judged:
            raise ValueError("reasoning text is never shown unjudged: keep judged: true, or hide it with shown: false")
        return value


class LongStream(BaseModel):
    """Responses longer than the model's max positions re-prefill the prompt plus a window."""

    model_config = _STRICT
    window_tokens: int = Field(256, ge=8, le=100_000)


class AuditSettings(BaseModel):
    """What decision records (see :mod:`guardkit.audit`) may carry besides the decision.

    ``include_text``: ``none`` (the default: no text at all), ``excerpt`` (up to
    200 characters around where the harm begins; the start of the text when
    nothing was found) or ``full`` (the whole prompt or response the guard saw).
    Text is put into a record only when the session ends, after every release
    decision was made.
    """

    model_config = _STRICT
    include_text: Literal["none", "excerpt", "full"] = "none"


class Policy(BaseModel):
    """A complete, validated guard policy (see ``policies/default.yaml``).

    ``enforcement``: ``enforce`` (the default) withholds and halts as the policy
    says; ``monitor`` (shadow mode) judges the same way but never withholds or
    halts anything: text is released as it arrives, and the decision records say
    what enforcement would have done and where.
    """

    model_config = _STRICT
    name: str = Field("custom", min_length=1)
    description: str = ""
    thresholds: Thresholds = Thresholds()
    controversial: Literal["strict", "loose"] = "loose"
    categories: dict[str, CategoryRule] = Field(default_factory=dict)
    debounce: Debounce = Debounce()
    release: Literal["judged", "passthrough"] = "judged"
    on_block: OnBlock = OnBlock()
    channels: Channels = Channels()
    prompt: PromptCheck = PromptCheck()
    reply_check: ReplyCheck = ReplyCheck()
    failure_mode: Literal["closed", "open"] = "closed"
    long_stream: LongStream = LongStream()
    enforcement: Literal["enforce", "monitor"] = "enforce"
    audit: AuditSettings = AuditSettings()

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: dict[str, CategoryRule]) -> dict[str, CategoryRule]:
        unknown = sorted(set(value) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown category {unknown[0]!r}{_did_you_mean(unknown[0], CATEGORIES)}; known: {', '.join(CATEGORIES)}")
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
        PolicyError: the file is missing, is not valid YAML, or fails validation
            (one line; ``exc.problems`` lists every problem found, one
            ``PolicyError`` each).
    """
    if isinstance(policy, Policy):
        return policy
    if not isinstance(policy, (str, Path)):
        raise PolicyError(f"expected a Policy, a built-in policy name or a path, got {type(policy).__name__}")
    try:
        data, source = _resolve_document(policy, base_dir=Path.cwd(), chain=())
        return _validate(data, source)
    except RecursionError:  # a last line of defence: every known path is bounded before this
        raise PolicyError("the policy is nested too deeply", source=str(policy)) from None


def policy_from_dict(data: dict[str, Any], source: str = "<dict>") -> Policy:
    """Validate a policy given as a mapping (``extends`` is resolved from the working directory)."""
    _check_depth(data, source)
    data = _apply_extends(dict(data), source, Path.cwd(), chain=(source,))
    return _validate(data, source)


def _resolve_document(ref: str | Path, base_dir: Path, chain: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    path = _locate(ref, base_dir)
    source = str(path)
    key = str(path.resolve())  # one key per file, however the path to it is spelled (./, .., symlinks)
    if key in chain:
        raise PolicyError("circular 'extends' chain: " + " -> ".join([*chain, key]), source=source, field="extends")
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise PolicyError(f"'extends' chain longer than {MAX_EXTENDS_DEPTH} files", source=source, field="extends")
    data = _read_yaml(path)
    data.setdefault("name", path.stem)
    data = _apply_extends(data, source, path.parent, chain=(*chain, key))
    return data, source


def _locate(ref: str | Path, base_dir: Path) -> Path:
    text = str(ref)
    builtins = builtin_policies()
    looks_like_name = isinstance(ref, str) and "/" not in text and "\\" not in text and not text.endswith((".yaml", ".yml"))
    if looks_like_name and text in builtins:
        return builtins[text]
    if looks_like_name and not (base_dir / text).exists():  # else an existing file or directory of that name is a path
        raise PolicyError(f"no built-in policy named {text!r}{_did_you_mean(text, builtins)}; built-in: {', '.join(builtins)}"
                          " (or give a path to a YAML file)")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    path = Path(os.path.normpath(path))
    if path.is_dir():
        raise PolicyError("is a directory, not a policy file", source=str(path))
    if not path.is_file():
        raise PolicyError("file not found" if not path.exists() else "not a regular file", source=str(path))
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_POLICY_BYTES + 1)
        if len(raw) > MAX_POLICY_BYTES:
            raise PolicyError(f"larger than {MAX_POLICY_BYTES // 1024} KiB; a policy file is a short YAML mapping", source=str(path))
        data = yaml.safe_load(raw.decode("utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(f"invalid YAML{where}: {problem}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"not UTF-8 text (byte {exc.start})", source=str(path)) from None
    except OSError as exc:
        raise PolicyError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    except RecursionError:
        raise PolicyError(f"nested deeper than {MAX_POLICY_DEPTH} levels", source=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(f"a policy must be a YAML mapping, got {type(data).__name__}", source=str(path))
    _check_depth(data, str(path))
    return data


def _check_depth(data: Any, source: str) -> None:
    """Refuse documents nested deeper than :data:`MAX_POLICY_DEPTH` (checked without recursion)."""
    todo: list[tuple[Any, int]] = [(data, 1)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_POLICY_DEPTH:
            raise PolicyError(f"nested deeper than {MAX_POLICY_DEPTH} levels", source=source)
        if isinstance(value, dict):
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, (list, tuple)):
            todo.extend((v, depth + 1) for v in value)


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


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The policy section (a model class) that the path ``loc`` leads into, if any."""
    current: Any = Policy
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
        if get_origin(current) is Union or type(current).__name__ == "UnionType":
            models = [a for a in get_args(current) if isinstance(a, type) and issubclass(a, BaseModel)]
            current = models[0] if models else current
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _problem(error: Any) -> tuple[str | None, str]:
    """(dotted field, message) for one pydantic error, with a suggestion for an unknown key."""
    loc = tuple(error["loc"])
    field = ".".join(str(part) for part in loc) or None
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        section = _model_at(loc[:-1])
        message = "unknown key" + (_did_you_mean(loc[-1], section.model_fields) if section is not None else "")
    return field, message


def _validate(data: dict[str, Any], source: str) -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors()]
    field, message = problems[0]
    if len(problems) > 1:
        rest = "; ".join(f"{f}: {m}" if f else m for f, m in problems[1:])
        message = f"{message} (and {len(problems) - 1} more: {rest})"
    error = PolicyError(message, source=source, field=field)
    error.problems = [PolicyError(m, source=source, field=f) for f, m in problems]  # type: ignore[attr-defined]
    raise error
