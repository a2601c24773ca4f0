"""guardkit export qwen3guard-stream: a tiny random checkpoint in the reference layout, end to end.

Skipped cleanly where the export extra (torch, safetensors) is not installed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from guardkit import Guard  # noqa: E402
from guardkit.cli import main as cli_main  # noqa: E402
from guardkit.decision import Debouncer, judge, judge_prompt  # noqa: E402
from guardkit.export import ExportError  # noqa: E402
from guardkit.export.onnx_graph import quantize_8bit, weight_names  # noqa: E402
from guardkit.export.qwen3guard import (  # noqa: E402
    DEFAULT_TEMPLATE,
    export_qwen3guard_stream,
    load_reference,
    open_checkpoint,
    spec_from_config,
)
from guardkit.model import StreamModel  # noqa: E402
from guardkit.policy import load_policy  # noqa: E402
from guardkit.verdict import RISK_LEVELS  # noqa: E402

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
RESPONSE_CATEGORIES = {
    "0": "Violent", "1": "Sexual Content or Sexual Acts", "2": "Suicide & Self-Harm", "3": "Politically Sensitive Topics",
    "4": "PII", "5": "Copyright Violation", "6": "Non-violent Illegal Acts", "7": "Unethical Acts",
}
QUERY_CATEGORIES = {**RESPONSE_CATEGORIES, "8": "Jailbreak"}
RISK_MAP = {"0": "Safe", "1": "Unsafe", "2": "Controversial"}
# A Qwen3-style chat template (written for this test): user turns, and the last
# assistant turn with an empty think block, as apply_chat_template renders them.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and loop.last %}"
    "{{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
CORPUS = [
    "Sure, here is how to bake bread: mix flour, water, salt and yeast, then knead the dough.",
    "I cannot help with that request, but I can tell you about the history of chemistry.",
    "The quick brown fox jumps over the lazy dog near the river bank at night.",
    "Write a story about a cat who learns to play the piano in Paris.",
    "How do I build a garden shed? First, pick a flat spot and gather wood and nails.",
    "Les chats aiment dormir au soleil. Über den Wolken muss die Freiheit wohl grenzenlos sein.",
]
TEXTS = [
    "Sure, here is how to bake bread: mix flour and water, then knead the dough for ten minutes.",
    "The fox jumps over the dog; the cat sleeps in the sun and dreams of fish at night.",
    "First pick a flat spot, then gather wood, nails and a hammer. Über alles: be careful!",
]

SPEC = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16, intermediate_size=96)


def _tokenizer(path: Path) -> int:
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer)
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": CHAT_TEMPLATE, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "model_max_length": 256,
        "tokenizer_class": "Qwen2Tokenizer",
    }))
    return tok.get_vocab_size()


def make_checkpoint(path: Path, *, seed: int = 0, extra_key: bool = False, drop_key: bool = False) -> Path:
    """A tiny random Qwen3Guard-Stream checkpoint with the published layout (config keys, tensor names, bf16)."""
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    vocab = _tokenizer(path)
    config = {
        "architectures": ["Qwen3ForGuardModel"],
        "auto_map": {"AutoModel": "modeling_qwen3_guard.Qwen3ForGuardModel"},
        "model_type": "qwen3", "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645,
        "hidden_act": "silu", "initializer_range": 0.02, "max_position_embeddings": 256, "max_window_layers": 2,
        "rms_norm_eps": 1e-6, "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None, "use_sliding_window": False,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": vocab,
        "guard_inner_size": 32, "num_risk_level": 3, "num_category": 8, "num_query_risk_level": 3, "num_query_category": 9,
        "response_risk_level_map": RISK_MAP, "response_category_map": RESPONSE_CATEGORIES,
        "query_risk_level_map": RISK_MAP, "query_category_map": QUERY_CATEGORIES,
        **SPEC,
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    ckpt_spec = spec_from_config(config)
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, shape in weight_names(ckpt_spec).items():
        if name.endswith("norm.weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif "head" in name:
            t = 0.6 * torch.randn(shape, generator=gen)  # spread the risk probabilities so verdicts vary
        else:
            t = torch.randn(shape, generator=gen) * (0.5 if "embed" in name else 1.0) / shape[-1] ** 0.5
        tensors[name] = t.to(torch.bfloat16)
    if extra_key:
        tensors["model.layers.0.self_attn.rotary_extra.weight"] = torch.zeros(2, dtype=torch.bfloat16)
    if drop_key:
        del tensors["query_category_head.weight"]
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()  # tied upstream; unused by the guard
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("qwen3guard")
    src = make_checkpoint(root / "Qwen3Guard-Stream-tiny")
    out = root / "bundle"
    assert cli_main(["export", "qwen3guard-stream", str(src), str(out), "--quiet"]) == 0
    return src, out, load_reference(src)


def _reference(model, ids: list[int]) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = model(torch.tensor([ids]))
    return {k: v[0].numpy() for k, v in out.items() if k != "present"}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# -- loading and the manifest ----------------------------------------------------


def test_strict_loading_and_manifest(tiny):
    src, out, model = tiny
    ckpt = open_checkpoint(src)
    assert ckpt.ignored_keys == ["lm_head.weight"]
    assert set(model.state_dict()) == set(weight_names(ckpt.spec))  # every parameter from the checkpoint, nothing else
    manifest = json.loads((out / "guardkit.json").read_text())
    assert manifest["risk_labels"] == ["safe", "unsafe", "controversial"]
    assert manifest["categories"] == ["violent", "sexual_content", "suicide_self_harm", "politically_sensitive", "pii",
                                      "copyright_violation", "non_violent_illegal_acts", "unethical_acts"]
    assert manifest["prompt_categories"] == [*manifest["categories"], "jailbreak"]
    assert manifest["template"] == DEFAULT_TEMPLATE
    assert manifest["state"] == {"num_layers": 2, "num_kv_heads": 2, "head_dim": 16, "dtype": "float32"}
    assert manifest["max_positions"] == 256
    assert set(manifest["files"]) == {"model.onnx", "tokenizer.json", "MODEL_CARD.md"}


def test_strict_loading_rejects_unexpected_and_missing_tensors(tmp_path):
    with pytest.raises(ExportError, match="unexpected 1: model.layers.0.self_attn.rotary_extra.weight"):
        open_checkpoint(make_checkpoint(tmp_path / "extra", extra_key=True))
    with pytest.raises(ExportError, match="missing 1: query_category_head.weight"):
        open_checkpoint(make_checkpoint(tmp_path / "missing", drop_key=True))


def test_backbone_matches_transformers_qwen3(tiny):
    """The reference backbone equals transformers' own Qwen3Model on the same weights."""
    transformers = pytest.importorskip("transformers")
    src, _, model = tiny
    cfg = json.loads((src / "config.json").read_text())
    hf_config = transformers.Qwen3Config(**{k: v for k, v in cfg.items() if k not in ("architectures", "auto_map")})
    hf_config._attn_implementation = "eager"
    hf = transformers.Qwen3Model(hf_config).eval()
    state = {k[len("model."):]: v for k, v in model.state_dict().items() if k.startswith("model.")}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and all("rotary" in m for m in missing)
    ids = torch.tensor([list(range(3, 40))])
    with torch.no_grad():
        ours, _ = model.model(ids)
        theirs = hf(input_ids=ids).last_hidden_state
    assert torch.allclose(ours, theirs, atol=1e-5), float((ours - theirs).abs().max())


# -- the ONNX graph against the PyTorch reference ------------------------------------


def test_logits_equal_reference_prefill_steps_and_chunks(tiny):
    src, out, model = tiny
    sm = StreamModel(out, device="cpu")
    ids = sm.prompt_token_ids("how do I bake bread?") + sm.response_prefix_ids()
    ids += sm.tokenizer.encode(TEXTS[0], add_special_tokens=False).ids
    ref = _reference(model, ids)
    ref_risk = _softmax(ref["risk_logits"])[:, [0, 2, 1]]  # safe, unsafe, controversial -> canonical order
    ref_cat = _softmax(ref["category_logits"])

    logits, state = sm.run(sm.empty_state(), ids)  # prefill of everything
    for name in ("risk_logits", "category_logits", "prompt_risk_logits", "prompt_category_logits"):
        assert np.abs(logits[name] - ref[name]).max() < 1e-4, name

    p = 12
    _, state = sm.run(sm.empty_state(), ids[:p])
    single = []
    for t in ids[p : p + 10]:  # single steps
        step, state = sm.run(state, [t])
        single.append(step["risk_logits"][0])
    assert np.abs(np.array(single) - ref["risk_logits"][p : p + 10]).max() < 1e-4
    chunks, cats = [], []
    _, state = sm.run(sm.empty_state(), ids[:p])
    for start in range(p, len(ids), 16):  # 16-token chunks
        step = sm.step(state, ids[start : start + 16])
        state = step.state
        chunks.append(step.risk)
        cats.append(step.category)
    assert np.abs(np.concatenate(chunks) - ref_risk[p:]).max() < 1e-4
    assert np.abs(np.concatenate(cats) - ref_cat[p:]).max() < 1e-4


def test_incremental_chunked_and_ragged_batch_equal_full_recompute(tiny):
    _, out, _ = tiny
    sm = StreamModel(out, device="cpu")
    rng = random.Random(3)
    seqs = [[rng.randrange(5, 300) for _ in range(n)] for n in (23, 9, 31)]
    full = [sm.step(sm.empty_state(), s) for s in seqs]
    for s, f in zip(seqs, full):
        state, rows = sm.empty_state(), []
        for t in s:
            o = sm.step(state, [t])
            state = o.state
            rows.append(o.risk[0])
        assert np.abs(np.array(rows) - f.risk).max() < 1e-4
    # ragged batch: different pasts and new-token counts in one call
    pasts, news = (5, 1, 17), (18, 3, 14)
    states = [sm.step(sm.empty_state(), s[:k]).state for s, k in zip(seqs, pasts)]
    outs = sm.step_many(states, [s[k : k + n] for s, k, n in zip(seqs, pasts, news)])
    for o, f, k, n in zip(outs, full, pasts, news):
        assert np.abs(o.risk - f.risk[k : k + n]).max() < 1e-4
        assert np.abs(o.category - f.category[k : k + n]).max() < 1e-4


# -- the streaming verdicts against the reference decision rule ------------------------


def _expected(model, sm: StreamModel, policy, prompt: str, text: str):
    """The decision rule applied to PyTorch logits, independently of StreamSession."""
    prompt_ids = sm.prompt_token_ids(prompt)
    enc = sm.tokenizer.encode(text, add_special_tokens=False)
    ids = prompt_ids + sm.response_prefix_ids() + enc.ids
    ref = _reference(model, ids)
    order = [0, 2, 1]
    prompt_j = judge_prompt(policy, _softmax(ref["prompt_risk_logits"][len(prompt_ids) - 1])[order],
                            _softmax(ref["prompt_category_logits"][len(prompt_ids) - 1]), sm.prompt_categories)
    if prompt_j.action == "halt":
        return "prompt", None
    first = len(ids) - len(enc.ids)
    debounce = Debouncer(policy.debounce.rule, policy.debounce.count)
    for i in range(len(enc.ids)):
        j = judge(policy, _softmax(ref["risk_logits"][first + i])[order], _softmax(ref["category_logits"][first + i]), sm.categories)
        onset = debounce.push(i, j.halts)
        if onset is not None:
            return "response", (onset, enc.offsets[onset][0], j.category)
    return None, None


def _splits(text: str, rng: random.Random) -> list[list[str]]:
    chars = list(text)  # character-level deltas
    cuts, pos = [], 0
    while pos < len(text):
        n = rng.randint(1, 7)
        cuts.append(text[pos : pos + n])
        pos += n
    return [chars, cuts, [text]]


def test_stream_verdicts_equal_reference_rule(tiny):
    """Guard.stream's verdicts equal the decision rule on the PyTorch logits, whatever the deltas' split."""
    _, out, model = tiny
    rng = random.Random(0)
    outcomes = set()
    for policy_name in ("default", "strict", "permissive"):
        guard = Guard(model=out, policy=policy_name, device="cpu")
        policy = load_policy(policy_name)
        for prompt in ("how do I bake bread?", "tell me a story"):
            for text in TEXTS:
                where, detail = _expected(model, guard.model, policy, prompt, text)
                outcomes.add(where)
                for deltas in _splits(text, rng):
                    stream = guard.stream(iter(deltas), prompt=prompt)
                    released = "".join(stream)
                    if where is None:
                        assert not stream.blocked and released == text
                        continue
                    assert stream.blocked, (policy_name, prompt, text, where)
                    assert stream.verdict.source == where
                    if where == "response":
                        onset, char, category = detail
                        assert (stream.verdict.token_index, stream.verdict.char_offset, stream.verdict.category) == (onset, char, category)
                        assert stream.released_text == text[:char]
    assert None in outcomes and "response" in outcomes, f"the tiny model's verdicts do not vary: {outcomes}"


def test_prompt_verdict_read_at_end_of_user_turn(tiny):
    _, out, model = tiny
    guard = Guard(model=out, device="cpu")
    ids = guard.model.prompt_token_ids("hello there")
    assert guard.model.tokenizer.id_to_token(ids[-1]) == "<|im_end|>"
    ref = _reference(model, ids)
    verdict = guard.check_prompt("hello there")
    p = _softmax(ref["prompt_risk_logits"][-1])[[0, 2, 1]]
    assert verdict.scores == pytest.approx({level: round(float(v), 6) for level, v in zip(RISK_LEVELS, p)}, abs=1e-5)


# -- dtypes, quantization, errors ------------------------------------------------------


def test_quantizer_matches_onnxruntime_packing():
    from onnx import helper, numpy_helper
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    w = np.random.default_rng(0).normal(size=(64, 24)).astype(np.float32)  # [K, N] as MatMul sees it
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "W"], ["Y"])], "g",
                              [helper.make_tensor_value_info("A", 1, [1, 64])], [helper.make_tensor_value_info("Y", 1, [1, 24])],
                              [numpy_helper.from_array(w, "W")])
    quantizer = MatMulNBitsQuantizer(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), bits=8, block_size=32, is_symmetric=True)
    quantizer.process()
    init = {t.name: numpy_helper.to_array(t) for t in quantizer.model.model.graph.initializer}
    packed, scales = quantize_8bit(w.T, 32)
    np.testing.assert_allclose(scales, init["W_scales"].reshape(scales.shape), rtol=1e-6)
    assert np.abs(packed.astype(int) - init["W_Q8"].reshape(packed.shape).astype(int)).max() <= 1  # rounding ties


def _export(src: Path, out: Path, *options: str) -> StreamModel:
    assert cli_main(["export", "qwen3guard-stream", str(src), str(out), "--quiet", *options]) == 0
    return StreamModel(out, device="cpu")


def test_fp16_bundle_runs_close_to_reference(tiny, tmp_path):
    src, _, model = tiny
    sm = _export(src, tmp_path / "fp16", "--dtype", "fp16")
    assert sm.manifest.state.dtype == "float16"
    ids = sm.prompt_token_ids("hi") + sm.response_prefix_ids() + sm.tokenizer.encode(TEXTS[1], add_special_tokens=False).ids
    ref = _reference(model, ids)
    step = sm.step(sm.empty_state(), ids[:10])
    step = sm.step(step.state, ids[10:])
    assert step.state.arrays[0].dtype == np.float16
    assert np.abs(step.risk - _softmax(ref["risk_logits"][10:])[:, [0, 2, 1]]).max() < 0.02


def test_int8_bundle_equals_dequantized_reference(tiny, tmp_path):
    """MatMulNBits (bits=8, default zero point 128, accuracy_level 0) computes exactly with the dequantized weights."""
    src, _, model = tiny
    export_qwen3guard_stream(src, tmp_path / "int8", int8=True, int8_accuracy_level=0)
    sm = StreamModel(tmp_path / "int8", device="cpu")
    quantized = load_reference(src)
    with torch.no_grad():
        for name, param in quantized.named_parameters():
            if param.ndim == 2 and name.startswith("model.layers."):
                packed, scales = quantize_8bit(param.numpy(), 32)
                deq = (packed.astype(np.float32) - 128) * scales[..., None]
                param.copy_(torch.from_numpy(deq.reshape(param.shape[0], -1)[:, : param.shape[1]]))
    ids = sm.prompt_token_ids("hi") + sm.response_prefix_ids() + sm.tokenizer.encode(TEXTS[1], add_special_tokens=False).ids
    ref = _reference(quantized, ids)
    logits, state = sm.run(sm.empty_state(), ids[:10])
    step, _ = sm.run(state, ids[10:])
    assert np.abs(step["risk_logits"] - ref["risk_logits"][10:]).max() < 1e-3
    assert np.abs(step["category_logits"] - ref["category_logits"][10:]).max() < 1e-3
    full = _reference(model, ids)  # and int8 stays near the unquantized model
    assert np.abs(_softmax(step["risk_logits"]) - _softmax(full["risk_logits"][10:])).max() < 0.1


def test_external_data_bundle(tiny, tmp_path):
    """Past the size limit the weights go to model.onnx.data, listed (sha256) in the manifest."""
    src, _, model = tiny
    result = export_qwen3guard_stream(src, tmp_path / "ext", inline_limit=0)
    assert "model.onnx.data" in result.manifest["files"]
    assert (tmp_path / "ext" / "model.onnx").stat().st_size < 100_000
    sm = StreamModel(tmp_path / "ext", device="cpu")
    ids = sm.prompt_token_ids("hi") + sm.response_prefix_ids()
    logits, _ = sm.run(sm.empty_state(), ids)
    assert np.abs(logits["risk_logits"] - _reference(model, ids)["risk_logits"]).max() < 1e-4


def test_int8_cli_bundle_stays_close(tiny, tmp_path):
    """--int8 (accuracy_level 4: int8 activations on CPU) stays near the float model."""
    src, _, model = tiny
    sm = _export(src, tmp_path / "int8", "--int8")
    ids = sm.prompt_token_ids("hi") + sm.response_prefix_ids() + sm.tokenizer.encode(TEXTS[2], add_special_tokens=False).ids
    step = sm.step(sm.empty_state(), ids)
    full = _softmax(_reference(model, ids)["risk_logits"])[:, [0, 2, 1]]
    assert np.abs(step.risk - full).mean() < 0.05


def test_clear_errors(tmp_path, tiny, capsys):
    src, _, _ = tiny

    def run(*argv: str) -> str:
        assert cli_main(["export", "qwen3guard-stream", *argv, "--quiet"]) == 2
        return capsys.readouterr().err

    assert "checkpoint directory not found" in run(str(tmp_path / "nope"), str(tmp_path / "o1"))
    other = tmp_path / "llama"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    assert "another architecture (LlamaForCausalLM)" in run(str(other), str(tmp_path / "o2"))
    no_tok = make_checkpoint(tmp_path / "notok")
    (no_tok / "tokenizer.json").unlink()
    assert "lacks the tokenizer files" in run(str(no_tok), str(tmp_path / "o3"))
    assert "unsupported dtype 'bf16'" in run(str(src), str(tmp_path / "o4"), "--dtype", "bf16")
    assert not (tmp_path / "o4").exists()


# -- the example and the benchmark script ------------------------------------------------


def test_example_exports_then_guards(tiny, tmp_path):
    import os
    import subprocess
    import sys

    src, _, _ = tiny
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    bundle = tmp_path / "example-bundle"
    proc = subprocess.run([sys.executable, str(root / "examples" / "qwen3guard_stream.py"), str(src), "--bundle", str(bundle),
                           "--device", "cpu", "--prompt", "hello", "--response", TEXTS[0]],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (bundle / "guardkit.json").is_file()
    assert "verdict:" in proc.stdout and "chat template verified" in proc.stderr


def test_bench_script_smoke(tmp_path, capsys):
    from guardkit.export import bench_qwen3guard

    report = tmp_path / "bench.txt"
    assert bench_qwen3guard.main(["--variants", "tiny:fp32,tiny:int8", "--context", "16", "--tokens", "16", "--lengths", "32",
                                  "--repeats", "1", "--out", str(report)]) == 0
    text = report.read_text()
    assert "| tiny | fp32 |" in text and "| tiny | int8 |" in text and "re-prefill @32" in text
