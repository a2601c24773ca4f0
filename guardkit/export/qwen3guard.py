"""Qwen3Guard-Stream: a PyTorch reference implementation and the bundle exporter.

The model (``Qwen3ForGuardModel`` in the checkpoint's ``config.json``) is a
Qwen3 decoder (RMSNorm, q/k RMSNorm per head, rotary embeddings with the
config's ``rope_theta``, grouped-query attention, SwiGLU MLP) whose last
hidden state feeds two head pairs: the response pair
(``risk_level_category_pre`` -> ``risk_level_category_layernorm`` (an RMSNorm)
-> ``risk_level_head`` / ``category_head``) and the query pair (same names
with a ``query_`` prefix). Parameter names and config keys follow the
published checkpoints, so their safetensors load strictly: every expected
tensor present with its shape, nothing unexpected except ``lm_head.weight``,
which the guard never uses and which is reported as ignored.

:class:`Qwen3GuardStream` is the reference (float32, explicit KV cache, the
same index-based causal mask as the exported graph); the ONNX graph itself is
emitted by :mod:`guardkit.export.onnx_graph` from the same weights, and the
test suite checks the two agree within 1e-4.

Requires torch and safetensors (``pip install 'guardkit[export]'``).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from guardkit.export import ExportError
from guardkit.export.onnx_graph import GraphSpec, build_onnx, weight_names

__all__ = [
    "ARCHITECTURE",
    "DEFAULT_TEMPLATE",
    "ExportResult",
    "GuardCheckpoint",
    "Qwen3GuardStream",
    "canonical_category",
    "export_qwen3guard_stream",
    "load_reference",
    "open_checkpoint",
    "spec_from_config",
]

logger = logging.getLogger("guardkit.export")

ARCHITECTURE = "Qwen3ForGuardModel"
#: Checkpoint tensors that exist upstream but play no part in the guard's outputs.
IGNORED_KEYS = ("lm_head.weight",)
#: The Qwen3 chat template's rendering of a user turn and of the assistant header with an empty think block.
DEFAULT_TEMPLATE = {"prompt": "<|im_start|>user\n{prompt}<|im_end|>", "response_prefix": "\n<|im_start|>assistant\n<think>\n\n</think>\n\n"}
_END_OF_TURN = "<|im_end|>"
_PROMPT_MARK, _RESPONSE_MARK = "GUARDKITPROMPTMARK", "GUARDKITRESPONSEMARK"

_CATEGORY_IDS = {
    "violent": "violent",
    "violence": "violent",
    "sexual content or sexual acts": "sexual_content",
    "sexual content": "sexual_content",
    "suicide self harm": "suicide_self_harm",
    "suicide and self harm": "suicide_self_harm",
    "politically sensitive topics": "politically_sensitive",
    "politically sensitive": "politically_sensitive",
    "pii": "pii",
    "copyright violation": "copyright_violation",
    "non violent illegal acts": "non_violent_illegal_acts",
    "unethical acts": "unethical_acts",
    "jailbreak": "jailbreak",
}
_RISK_IDS = {"safe": "safe", "unsafe": "unsafe", "controversial": "controversial"}


def _key(label: str) -> str:
    return re.sub(r"[^a-z]+", " ", label.lower()).strip()


def canonical_category(label: str) -> str:
    """Map one of Qwen3Guard's category names (e.g. ``"Suicide & Self-Harm"``) to guardkit's id."""
    try:
        return _CATEGORY_IDS[_key(label)]
    except KeyError:
        raise ExportError(f"unknown category {label!r} in the checkpoint's label maps; guardkit knows {sorted(set(_CATEGORY_IDS.values()))}") from None


def _ordered(mapping: dict[str, str], field_name: str) -> list[str]:
    try:
        items = sorted(((int(k), v) for k, v in mapping.items()), key=lambda kv: kv[0])
    except (TypeError, ValueError, AttributeError):
        raise ExportError(f"config.json: {field_name} must map class indices to names, got {mapping!r}") from None
    if [k for k, _ in items] != list(range(len(items))):
        raise ExportError(f"config.json: {field_name} indices must be 0..{len(items) - 1}, got {[k for k, _ in items]}")
    return [v for _, v in items]


# ---------------------------------------------------------------------------
# checkpoint
# ---------------------------------------------------------------------------


@dataclass
class GuardCheckpoint:
    """A validated local checkpoint directory."""

    path: Path
    config: dict[str, Any]
    spec: GraphSpec
    risk_labels: list[str]
    categories: list[str]
    prompt_risk_labels: list[str]
    prompt_categories: list[str]
    max_positions: int
    tensor_files: dict[str, Path]
    tokenizer_file: Path
    ignored_keys: list[str] = field(default_factory=list)

    def tensor(self, name: str) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(str(self.tensor_files[name]), framework="pt") as handle:
            return handle.get_tensor(name)

    def numpy(self, name: str) -> np.ndarray:
        return self.tensor(name).to(torch.float32).numpy()


def spec_from_config(cfg: dict[str, Any]) -> GraphSpec:
    def need(key: str) -> Any:
        if key not in cfg:
            raise ExportError(f"config.json lacks {key!r} (not a Qwen3Guard-Stream checkpoint?)")
        return cfg[key]

    if cfg.get("hidden_act", "silu") != "silu":
        raise ExportError(f"config.json: hidden_act {cfg['hidden_act']!r} is not supported (Qwen3 uses silu)")
    if cfg.get("rope_scaling"):
        raise ExportError(f"config.json: rope_scaling {cfg['rope_scaling']!r} is not supported by this exporter")
    if cfg.get("use_sliding_window"):
        raise ExportError("config.json: use_sliding_window is not supported by this exporter")
    heads = int(need("num_attention_heads"))
    hidden = int(need("hidden_size"))
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    if heads % kv_heads:
        raise ExportError(f"config.json: num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}")
    maps = {k: _ordered(need(k), k) for k in ("response_risk_level_map", "response_category_map", "query_risk_level_map", "query_category_map")}
    counts = {
        "num_risk_level": len(maps["response_risk_level_map"]),
        "num_category": len(maps["response_category_map"]),
        "num_query_risk_level": len(maps["query_risk_level_map"]),
        "num_query_category": len(maps["query_category_map"]),
    }
    for key, n in counts.items():
        if key in cfg and int(cfg[key]) != n:
            raise ExportError(f"config.json: {key} is {cfg[key]} but its label map has {n} entries")
    return GraphSpec(
        num_layers=int(need("num_hidden_layers")),
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=int(cfg.get("head_dim") or hidden // heads),
        intermediate_size=int(need("intermediate_size")),
        vocab_size=int(need("vocab_size")),
        rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        rope_theta=float(cfg.get("rope_theta", 10000.0)),
        guard_inner_size=int(need("guard_inner_size")),
        num_risk=counts["num_risk_level"],
        num_category=counts["num_category"],
        num_query_risk=counts["num_query_risk_level"],
        num_query_category=counts["num_query_category"],
        attention_bias=bool(cfg.get("attention_bias", False)),
    )


def _tensor_index(src: Path) -> dict[str, Path]:
    from safetensors import safe_open

    index = src / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        files = {name: src / file for name, file in weight_map.items()}
        for path in set(files.values()):
            if not path.is_file():
                raise ExportError(f"{index.name} names {path.name}, which is missing from {src}")
        return files
    shards = sorted(src.glob("*.safetensors"))
    if not shards:
        raise ExportError(f"no *.safetensors weights in {src} (only safetensors checkpoints are supported)")
    files: dict[str, Path] = {}
    for shard in shards:
        with safe_open(str(shard), framework="pt") as handle:
            for name in handle.keys():
                files[name] = shard
    return files


def _shapes(files: dict[str, Path]) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    by_file: dict[Path, list[str]] = {}
    for name, path in files.items():
        by_file.setdefault(path, []).append(name)
    for path, names in by_file.items():
        with safe_open(str(path), framework="pt") as handle:
            for name in names:
                shapes[name] = tuple(handle.get_slice(name).get_shape())
    return shapes


def open_checkpoint(src: str | Path) -> GuardCheckpoint:
    """Validate a local Qwen3Guard-Stream checkpoint directory; nothing is loaded yet.

    Raises:
        ExportError: a missing directory, a checkpoint of another architecture,
            missing tokenizer files, or weights that do not match the config
            strictly (missing, unexpected or mis-shaped tensors).
    """
    path = Path(src)
    if not path.is_dir():
        raise ExportError(f"checkpoint directory not found: {path}")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ExportError(f"{path} has no config.json: not a Hugging Face checkpoint directory")
    try:
        cfg = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{config_path}: invalid JSON: {exc}") from None
    archs = cfg.get("architectures") or []
    if ARCHITECTURE not in archs:
        raise ExportError(
            f"{path} is a checkpoint of another architecture ({', '.join(archs) or cfg.get('model_type', 'unknown')}); "
            f"this exporter needs Qwen3Guard-Stream ({ARCHITECTURE})"
        )
    tokenizer_file = path / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ExportError(f"{path} lacks the tokenizer files (tokenizer.json); download them with the checkpoint")
    spec = spec_from_config(cfg)
    files = _tensor_index(path)
    shapes = _shapes(files)
    expected = weight_names(spec)
    missing = [n for n in expected if n not in shapes]
    unexpected = [n for n in shapes if n not in expected and n not in IGNORED_KEYS]
    wrong = [f"{n} {shapes[n]} (config says {s})" for n, s in expected.items() if n in shapes and shapes[n] != s]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append(f"mis-shaped {len(wrong)}: {', '.join(wrong[:3])}")
        raise ExportError(f"the weights in {path} do not match {ARCHITECTURE} strictly: " + "; ".join(parts))
    risk = [_RISK_IDS.get(_key(v), "") for v in _ordered(cfg["response_risk_level_map"], "response_risk_level_map")]
    prompt_risk = [_RISK_IDS.get(_key(v), "") for v in _ordered(cfg["query_risk_level_map"], "query_risk_level_map")]
    for name, labels in (("response_risk_level_map", risk), ("query_risk_level_map", prompt_risk)):
        if sorted(labels) != ["controversial", "safe", "unsafe"]:
            raise ExportError(f"config.json: {name} must name Safe, Unsafe and Controversial once each, got {cfg[name]}")
    return GuardCheckpoint(
        path=path,
        config=cfg,
        spec=spec,
        risk_labels=risk,
        categories=[canonical_category(v) for v in _ordered(cfg["response_category_map"], "response_category_map")],
        prompt_risk_labels=prompt_risk,
        prompt_categories=[canonical_category(v) for v in _ordered(cfg["query_category_map"], "query_category_map")],
        max_positions=int(cfg.get("max_position_embeddings", 32768)),
        tensor_files=files,
        tokenizer_file=tokenizer_file,
        ignored_keys=[n for n in shapes if n in IGNORED_KEYS],
    )


# ---------------------------------------------------------------------------
# PyTorch reference
# ---------------------------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Attention(nn.Module):
    def __init__(self, spec: GraphSpec) -> None:
        super().__init__()
        d, bias = spec.head_dim, spec.attention_bias
        self.spec = spec
        self.q_proj = nn.Linear(spec.hidden_size, spec.num_heads * d, bias=bias)
        self.k_proj = nn.Linear(spec.hidden_size, spec.num_kv_heads * d, bias=bias)
        self.v_proj = nn.Linear(spec.hidden_size, spec.num_kv_heads * d, bias=bias)
        self.o_proj = nn.Linear(spec.num_heads * d, spec.hidden_size, bias=bias)
        self.q_norm = RMSNorm(d, spec.rms_norm_eps)
        self.k_norm = RMSNorm(d, spec.rms_norm_eps)

    def forward(self, x, cos, sin, bias, past):  # type: ignore[no-untyped-def]
        s = self.spec
        b, n, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, n, s.num_heads, s.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(b, n, s.num_kv_heads, s.head_dim)).transpose(1, 2)
        v = self.v_proj(x).view(b, n, s.num_kv_heads, s.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        groups = s.num_heads // s.num_kv_heads
        kr, vr = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        scores = (q @ kr.transpose(-1, -2)).float() * s.head_dim**-0.5 + bias
        out = torch.softmax(scores, dim=-1).to(q.dtype) @ vr
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1)), (k, v)


class MLP(nn.Module):
    def __init__(self, spec: GraphSpec) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(spec.hidden_size, spec.intermediate_size, bias=False)
        self.up_proj = nn.Linear(spec.hidden_size, spec.intermediate_size, bias=False)
        self.down_proj = nn.Linear(spec.intermediate_size, spec.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, spec: GraphSpec) -> None:
        super().__init__()
        self.self_attn = Attention(spec)
        self.mlp = MLP(spec)
        self.input_layernorm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)

    def forward(self, x, cos, sin, bias, past):  # type: ignore[no-untyped-def]
        attn, present = self.self_attn(self.input_layernorm(x), cos, sin, bias, past)
        x = x + attn
        return x + self.mlp(self.post_attention_layernorm(x)), present


class Backbone(nn.Module):
    """The Qwen3 decoder (``model.*`` in the checkpoint)."""

    def __init__(self, spec: GraphSpec) -> None:
        super().__init__()
        self.spec = spec
        self.embed_tokens = nn.Embedding(spec.vocab_size, spec.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(spec) for _ in range(spec.num_layers))
        self.norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        d = spec.head_dim
        inv_freq = 1.0 / (spec.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, input_ids, attention_mask=None, position_ids=None, past=None):  # type: ignore[no-untyped-def]
        b, n = input_ids.shape
        past_len = past[0][0].shape[2] if past else 0
        total = past_len + n
        if attention_mask is None:
            attention_mask = torch.ones(b, total, dtype=torch.long)
        if position_ids is None:
            position_ids = torch.arange(past_len, total).expand(b, n)
        freqs = position_ids.float()[..., None] * self.inv_freq
        emb = torch.cat([freqs, freqs], dim=-1)
        x = self.embed_tokens(input_ids)
        cos, sin = emb.cos()[:, None].to(x.dtype), emb.sin()[:, None].to(x.dtype)
        causal = torch.arange(total)[None, :] <= (torch.arange(n) + past_len)[:, None]  # [S,T]
        allowed = causal[None, None] & attention_mask.bool()[:, None, None, :]
        bias = torch.where(allowed, 0.0, -1e9).float()
        presents = []
        for i, layer in enumerate(self.layers):
            x, present = layer(x, cos, sin, bias, past[i] if past else None)
            presents.append(present)
        return self.norm(x), presents


class Qwen3GuardStream(nn.Module):
    """Qwen3ForGuardModel with an explicit KV cache; parameter names match the checkpoint."""

    def __init__(self, spec: GraphSpec) -> None:
        super().__init__()
        self.spec = spec
        g = spec.guard_inner_size
        self.model = Backbone(spec)
        self.risk_level_category_pre = nn.Linear(spec.hidden_size, g, bias=False)
        self.risk_level_category_layernorm = RMSNorm(g, spec.rms_norm_eps)
        self.risk_level_head = nn.Linear(g, spec.num_risk, bias=False)
        self.category_head = nn.Linear(g, spec.num_category, bias=False)
        self.query_risk_level_category_pre = nn.Linear(spec.hidden_size, g, bias=False)
        self.query_risk_level_category_layernorm = RMSNorm(g, spec.rms_norm_eps)
        self.query_risk_level_head = nn.Linear(g, spec.num_query_risk, bias=False)
        self.query_category_head = nn.Linear(g, spec.num_query_category, bias=False)

    def forward(self, input_ids, attention_mask=None, position_ids=None, past=None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        """Logits for every new position and the new KV state (``present``: a list of (key, value) per layer)."""
        h, presents = self.model(input_ids, attention_mask, position_ids, past)
        h = h.float()
        r = self.risk_level_category_layernorm(self.risk_level_category_pre(h))
        q = self.query_risk_level_category_layernorm(self.query_risk_level_category_pre(h))
        return {
            "risk_logits": self.risk_level_head(r),
            "category_logits": self.category_head(r),
            "prompt_risk_logits": self.query_risk_level_head(q),
            "prompt_category_logits": self.query_category_head(q),
            "present": presents,
        }


def load_reference(src: str | Path | GuardCheckpoint, dtype: torch.dtype = torch.float32) -> Qwen3GuardStream:
    """Build the PyTorch reference and load the checkpoint into it with ``strict=True``."""
    ckpt = src if isinstance(src, GuardCheckpoint) else open_checkpoint(src)
    model = Qwen3GuardStream(ckpt.spec)
    state = {name: ckpt.tensor(name).to(dtype) for name in weight_names(ckpt.spec)}
    result = model.load_state_dict(state, strict=True)
    if result.missing_keys or result.unexpected_keys:  # pragma: no cover - strict raises first
        raise ExportError(f"strict load failed: {result}")
    return model.to(dtype).eval()


# ---------------------------------------------------------------------------
# chat template
# ---------------------------------------------------------------------------


def _chat_template(src: Path) -> str | None:
    jinja = src / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config = src / "tokenizer_config.json"
    if not config.is_file():
        return None
    template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
    if isinstance(template, list):  # named templates
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return template if isinstance(template, str) else None


def derive_template(src: Path) -> tuple[dict[str, str], str]:
    """The manifest's template, read off the checkpoint's chat template; returns it and a note.

    The conversation ``[user, assistant]`` is rendered with
    ``add_generation_prompt=False, enable_thinking=False`` (as Qwen3Guard-Stream's
    README does); the prompt is everything through the ``<|im_end|>`` closing
    the user turn, the response prefix what comes between it and the content.
    Without a chat template (or jinja2) the Qwen3 default is used and the note says so.
    """
    template = _chat_template(src)
    if template is None:
        return dict(DEFAULT_TEMPLATE), "no chat template in the checkpoint: used the Qwen3 default"
    try:
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        return dict(DEFAULT_TEMPLATE), "jinja2 is not installed: used the Qwen3 default without checking the chat template"

    def raise_exception(message: str) -> None:
        raise ExportError(f"the chat template refused the probe conversation: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    env.filters["tojson"] = lambda value, **_: json.dumps(value)
    messages = [{"role": "user", "content": _PROMPT_MARK}, {"role": "assistant", "content": _RESPONSE_MARK}]
    try:
        rendered = env.from_string(template).render(messages=messages, add_generation_prompt=False, enable_thinking=False, tools=None)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - any template error
        raise ExportError(f"cannot render the checkpoint's chat template: {exc}") from None
    try:
        p = rendered.index(_PROMPT_MARK)
        end = rendered.index(_END_OF_TURN, p) + len(_END_OF_TURN)
        r = rendered.index(_RESPONSE_MARK, end)
    except ValueError:
        raise ExportError(f"unexpected chat template rendering (no user turn closed by {_END_OF_TURN}): {rendered!r}") from None
    if not rendered[r + len(_RESPONSE_MARK):].startswith(_END_OF_TURN):
        raise ExportError(f"unexpected chat template rendering (assistant turn not closed by {_END_OF_TURN}): {rendered!r}")
    derived = {
        "prompt": rendered[:p] + "{prompt}" + rendered[p + len(_PROMPT_MARK) : end],
        "response_prefix": rendered[end:r],
    }
    note = "chat template verified" if derived == DEFAULT_TEMPLATE else f"chat template differs from the Qwen3 default; using {derived!r}"
    return derived, note


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------


@dataclass
class ExportResult:
    path: Path
    files: list[str]
    ignored_keys: list[str]
    template_note: str
    manifest: dict[str, Any]


def _model_card(ckpt: GuardCheckpoint, name: str, dtype: str, int8: bool, files: Sequence[str]) -> str:
    s = ckpt.spec
    return f"""# {name}

Qwen3Guard-Stream exported to a guardkit bundle by `guardkit export qwen3guard-stream`.
This file is a stub: the model, its data, training recipe, metrics and limits are
described upstream, by its authors:

- model: https://huggingface.co/Qwen (Qwen3Guard-Stream-0.6B / -4B / -8B), Apache-2.0
- code and technical report: https://github.com/QwenLM/Qwen3Guard

## This export

- source directory: `{ckpt.path.name}`
- weights: {dtype}{", projections 8-bit (MatMulNBits, accuracy_level 4: int8 compute on CPU)" if int8 else ""}; heads, norms and softmax in float32
- shape: {s.num_layers} layers, hidden {s.hidden_size}, {s.num_heads} heads ({s.num_kv_heads} KV heads, head_dim {s.head_dim}), vocab {s.vocab_size}
- KV cache in and out of one ONNX graph (prefill and incremental steps), dynamic batch and lengths
- files: {", ".join(files)}

Risk labels and categories are mapped from the checkpoint's `config.json` to guardkit's
canonical ids; the template follows the checkpoint's chat template (prompt verdict at
the `<|im_end|>` closing the user turn, response after the empty think block).
Latency: run `guardkit bench --model <this directory>`.
"""


def export_qwen3guard_stream(
    src: str | Path,
    out: str | Path,
    *,
    dtype: str = "fp32",
    int8: bool = False,
    block_size: int = 32,
    int8_accuracy_level: int = 4,
    name: str | None = None,
    progress: Any = None,
    inline_limit: int | None = None,
) -> ExportResult:
    """Export the checkpoint in ``src`` to a guardkit bundle in ``out``.

    Args:
        dtype: ``fp32`` or ``fp16`` weights and KV state (fp16 is for GPUs).
        int8: 8-bit weight-only quantization of the projections (``MatMulNBits``).
        block_size: quantization block along the input dimension.
        int8_accuracy_level: ``MatMulNBits`` accuracy level: 4 (default) computes
            in int8 on CPU, fast, activations quantized per block; 0 is exact
            dequantization, slower than fp32 on CPU.
        inline_limit: weight bytes above which they go to ``model.onnx.data``
            (default: just under protobuf's 2 GB limit).

    Raises:
        ExportError: a bad source checkpoint (see :func:`open_checkpoint`),
            an unsupported dtype or a non-empty output directory.
    """
    from guardkit.manifest import FORMAT_VERSION, MANIFEST_NAME, Manifest, file_entry

    if dtype not in ("fp32", "fp16"):
        raise ExportError(f"unsupported dtype {dtype!r}: choose fp32 or fp16 (bf16 has no ONNX Runtime kernels; use --int8 for smaller weights)")
    ckpt = open_checkpoint(src)
    template, note = derive_template(ckpt.path)
    out_dir = Path(out)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ExportError(f"output directory {out_dir} exists and is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        extra = {} if inline_limit is None else {"inline_limit": inline_limit}
        files = build_onnx(ckpt.spec, ckpt.numpy, out_dir, dtype=dtype, int8=int8, block_size=block_size,
                           int8_accuracy_level=int8_accuracy_level, progress=progress, **extra)
        shutil.copyfile(ckpt.tokenizer_file, out_dir / "tokenizer.json")
        base = name or (ckpt.path.name.lower() if "qwen3guard" in ckpt.path.name.lower() else "qwen3guard-stream")
        card_files = [MANIFEST_NAME, *files, "tokenizer.json", "MODEL_CARD.md"]
        (out_dir / "MODEL_CARD.md").write_text(_model_card(ckpt, base, dtype, int8, card_files), encoding="utf-8")
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "name": base,
            "version": f"{dtype}{'-int8' if int8 else ''}",
            "license": "Apache-2.0",
            "description": f"Qwen3Guard-Stream exported by guardkit ({dtype}{', int8 weights' if int8 else ''}); upstream: QwenLM/Qwen3Guard.",
            "model_file": "model.onnx",
            "tokenizer_file": "tokenizer.json",
            "files": {f: file_entry(out_dir / f) for f in [*files, "tokenizer.json", "MODEL_CARD.md"]},
            "risk_labels": ckpt.risk_labels,
            "categories": ckpt.categories,
            "prompt_risk_labels": ckpt.prompt_risk_labels,
            "prompt_categories": ckpt.prompt_categories,
            "max_positions": ckpt.max_positions,
            "state": {
                "num_layers": ckpt.spec.num_layers,
                "num_kv_heads": ckpt.spec.num_kv_heads,
                "head_dim": ckpt.spec.head_dim,
                "dtype": "float16" if dtype == "fp16" else "float32",
            },
            "template": template,
        }
        Manifest.model_validate(manifest)  # the runtime's own schema
        (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return ExportResult(path=out_dir, files=[MANIFEST_NAME, *manifest["files"]], ignored_keys=ckpt.ignored_keys, template_note=note, manifest=manifest)
