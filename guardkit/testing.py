"""A tiny, hand-wired model bundle that follows the ONNX contract, for unit tests.

It is *not* a safety model: its weights are set by hand so that a fixed list of
words reads as unsafe or controversial. That makes stream semantics testable
with known answers, on any machine, in milliseconds. It has a real KV cache
(one attention layer whose output feeds the heads), a prompt head that looks
back over the prompt through attention, configurable max positions and a
non-canonical risk-label order (Qwen3Guard's ``safe, unsafe, controversial``)
so the runtime's label mapping is exercised too.

Needs the ``onnx`` package (``pip install 'guardkit[test]'``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from guardkit.manifest import FORMAT_VERSION, MANIFEST_NAME, file_entry

__all__ = ["CONTROVERSIAL_WORDS", "SAFE_WORDS", "UNSAFE_WORDS", "build_tiny_bundle"]

#: Word -> canonical category of the words the tiny model reads as unsafe.
UNSAFE_WORDS: dict[str, str] = {
    "bomb": "violent", "detonator": "violent", "explosive": "violent", "stab": "violent", "kill": "violent",
    "steal": "non_violent_illegal_acts", "launder": "non_violent_illegal_acts", "counterfeit": "non_violent_illegal_acts",
    "nude": "sexual_content", "ssn": "pii", "overdose": "suicide_self_harm", "cheat": "unethical_acts",
    "pirate": "copyright_violation", "dan": "jailbreak",
}
CONTROVERSIAL_WORDS: dict[str, str] = {"gamble": "unethical_acts", "propaganda": "politically_sensitive"}
SAFE_WORDS: tuple[str, ...] = (
    "the", "a", "an", "how", "to", "do", "i", "you", "we", "can", "help", "with", "that", "this", "is", "are",
    "sure", "here", "recipe", "bake", "bread", "flour", "water", "sugar", "salt", "mix", "and", "then", "first",
    "step", "make", "build", "garden", "shed", "wood", "nails", "hello", "world", "please", "thanks", "of", "in",
    "it", "for", "on", "what", "why", "history", "medicine", "security", "story", "write", "about", "sorry",
    "cannot", "not", "no", "yes", "ok", "good", "great", "day", "night", "cat", "dog", "tea", "coffee",
)
_CATEGORIES = ("violent", "non_violent_illegal_acts", "sexual_content", "pii", "suicide_self_harm",
               "unethical_acts", "politically_sensitive", "copyright_violation")
_PROMPT_CATEGORIES = (*_CATEGORIES, "jailbreak")

D, H, HD = 24, 2, 12  # model width, heads, head dim
_UNSAFE, _CONTRO, _CAT0, _CONST, _ATT0 = 0, 1, 2, 11, 12


def _tokenizer(path: Path) -> dict[str, int]:
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *SAFE_WORDS, *UNSAFE_WORDS, *CONTROVERSIAL_WORDS]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'\"-:;()")
    pieces = letters + ["##" + c for c in letters]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words + pieces))}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    tok.save(str(path))
    return vocab


def _weights(vocab: dict[str, int], max_positions: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = np.zeros((len(vocab), D), dtype=np.float32)
    emb[:, _ATT0:] = rng.normal(0, 0.02, (len(vocab), D - _ATT0))
    emb[:, _CONST] = 1.0
    for word, category in UNSAFE_WORDS.items():
        emb[vocab[word], _UNSAFE] = 1.0
        emb[vocab[word], _CAT0 + _PROMPT_CATEGORIES.index(category)] = 1.0
    for word, category in CONTROVERSIAL_WORDS.items():
        emb[vocab[word], _CONTRO] = 1.0
        emb[vocab[word], _CAT0 + _PROMPT_CATEGORIES.index(category)] = 1.0
    pos = np.zeros((max_positions, D), dtype=np.float32)
    pos[:, _ATT0:] = rng.normal(0, 0.02, (max_positions, D - _ATT0))

    wq = np.zeros((D, H * HD), dtype=np.float32)
    wk = np.zeros((D, H * HD), dtype=np.float32)
    wv = np.zeros((D, H * HD), dtype=np.float32)
    wo = np.zeros((H * HD, D), dtype=np.float32)
    # head 0 looks back at risky tokens: constant query, key = risk signal, value = the risk/category dims
    wq[_CONST, 0] = 1.0
    wk[_UNSAFE, 0] = wk[_CONTRO, 0] = 6.0 * np.sqrt(HD)
    for j in range(11):
        wv[j, j] = 1.0
        wo[j, _ATT0 + j] = 1.0
    # head 1 is random context mixing with a small effect on the risk dims (so a wrong KV cache shows)
    wq[:, HD:] = rng.normal(0, 0.5, (D, HD))
    wk[:, HD:] = rng.normal(0, 0.5, (D, HD))
    wv[:, HD:] = rng.normal(0, 0.5, (D, HD))
    wo[HD:, _UNSAFE] = rng.normal(0, 0.03, HD)
    wo[HD:, _CONTRO] = rng.normal(0, 0.03, HD)

    # response head, columns in Qwen3Guard's order: safe, unsafe, controversial
    w_risk = np.zeros((D, 3), dtype=np.float32)
    w_risk[_UNSAFE, 1] = 4.0
    w_risk[_ATT0 + _UNSAFE, 1] = 0.5
    w_risk[_CONTRO, 2] = 4.0
    b_risk = np.array([0.0, -2.0, -2.0], dtype=np.float32)
    w_cat = np.zeros((D, len(_CATEGORIES)), dtype=np.float32)
    for j in range(len(_CATEGORIES)):
        w_cat[_CAT0 + j, j] = 4.0
    # prompt head reads what head 0 gathered over the prompt
    w_prisk = np.zeros((D, 3), dtype=np.float32)
    w_prisk[_ATT0 + _UNSAFE, 1] = 6.0
    w_prisk[_ATT0 + _CONTRO, 2] = 6.0
    b_prisk = np.array([0.0, -3.0, -3.0], dtype=np.float32)
    w_pcat = np.zeros((D, len(_PROMPT_CATEGORIES)), dtype=np.float32)
    for j in range(len(_PROMPT_CATEGORIES)):
        w_pcat[_ATT0 + _CAT0 + j, j] = 4.0
    return {
        "emb": emb, "pos": pos, "wq": wq, "wk": wk, "wv": wv, "wo": wo, "scale": np.array(1 / np.sqrt(HD), dtype=np.float32),
        "w_risk": w_risk, "b_risk": b_risk, "w_cat": w_cat, "w_prisk": w_prisk, "b_prisk": b_prisk, "w_pcat": w_pcat,
        "neg": np.array(-1e9, dtype=np.float32), "shape4": np.array([0, 0, H, HD], dtype=np.int64),
        "shape3": np.array([0, 0, H * HD], dtype=np.int64), "one": np.array(1, dtype=np.int64), "zero": np.array(0, dtype=np.int64),
        "ax0": np.array([0], dtype=np.int64), "ax1": np.array([1], dtype=np.int64), "ax12": np.array([1, 2], dtype=np.int64),
    }


def _graph(weights: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper, numpy_helper

    n = helper.make_node
    nodes = [
        n("Gather", ["emb", "input_ids"], ["tok"]),
        n("Gather", ["pos", "position_ids"], ["pe"]),
        n("Add", ["tok", "pe"], ["x"]),
    ]
    for name, w in (("q", "wq"), ("k", "wk"), ("v", "wv")):
        nodes += [
            n("MatMul", ["x", w], [f"{name}_flat"]),
            n("Reshape", [f"{name}_flat", "shape4"], [f"{name}_4"]),
            n("Transpose", [f"{name}_4"], [f"{name}_h"], perm=[0, 2, 1, 3]),
        ]
    nodes += [
        n("Concat", ["past_key_values.0.key", "k_h"], ["present.0.key"], axis=2),
        n("Concat", ["past_key_values.0.value", "v_h"], ["present.0.value"], axis=2),
        n("Transpose", ["present.0.key"], ["k_t"], perm=[0, 1, 3, 2]),
        n("MatMul", ["q_h", "k_t"], ["raw_scores"]),
        n("Mul", ["raw_scores", "scale"], ["scores"]),
        # causal + padding mask from attention_mask's length
        n("Shape", ["input_ids"], ["ids_shape"]),
        n("Gather", ["ids_shape", "one"], ["seq_len"]),
        n("Shape", ["attention_mask"], ["mask_shape"]),
        n("Gather", ["mask_shape", "one"], ["total_len"]),
        n("Sub", ["total_len", "seq_len"], ["past_len"]),
        n("Range", ["past_len", "total_len", "one"], ["q_pos"]),
        n("Unsqueeze", ["q_pos", "ax1"], ["q_col"]),
        n("Range", ["zero", "total_len", "one"], ["k_pos"]),
        n("Unsqueeze", ["k_pos", "ax0"], ["k_row"]),
        n("LessOrEqual", ["k_row", "q_col"], ["causal"]),
        n("Cast", ["attention_mask"], ["mask_bool"], to=TensorProto.BOOL),
        n("Unsqueeze", ["mask_bool", "ax12"], ["mask_4"]),
        n("And", ["causal", "mask_4"], ["allowed"]),
        n("Where", ["allowed", "scores", "neg"], ["masked"]),
        n("Softmax", ["masked"], ["probs"], axis=-1),
        n("MatMul", ["probs", "present.0.value"], ["ctx_h"]),
        n("Transpose", ["ctx_h"], ["ctx_4"], perm=[0, 2, 1, 3]),
        n("Reshape", ["ctx_4", "shape3"], ["ctx"]),
        n("MatMul", ["ctx", "wo"], ["attn"]),
        n("Add", ["x", "attn"], ["h"]),
        n("MatMul", ["h", "w_risk"], ["risk_raw"]),
        n("Add", ["risk_raw", "b_risk"], ["risk_logits"]),
        n("MatMul", ["h", "w_cat"], ["category_logits"]),
        n("MatMul", ["h", "w_prisk"], ["prisk_raw"]),
        n("Add", ["prisk_raw", "b_prisk"], ["prompt_risk_logits"]),
        n("MatMul", ["h", "w_pcat"], ["prompt_category_logits"]),
    ]
    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    inputs = [
        helper.make_tensor_value_info("input_ids", i64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", i64, ["batch", "total"]),
        helper.make_tensor_value_info("position_ids", i64, ["batch", "seq"]),
        helper.make_tensor_value_info("past_key_values.0.key", f32, ["batch", H, "past", HD]),
        helper.make_tensor_value_info("past_key_values.0.value", f32, ["batch", H, "past", HD]),
    ]
    outputs = [
        helper.make_tensor_value_info("risk_logits", f32, ["batch", "seq", 3]),
        helper.make_tensor_value_info("category_logits", f32, ["batch", "seq", len(_CATEGORIES)]),
        helper.make_tensor_value_info("prompt_risk_logits", f32, ["batch", "seq", 3]),
        helper.make_tensor_value_info("prompt_category_logits", f32, ["batch", "seq", len(_PROMPT_CATEGORIES)]),
        helper.make_tensor_value_info("present.0.key", f32, ["batch", H, "total", HD]),
        helper.make_tensor_value_info("present.0.value", f32, ["batch", H, "total", HD]),
    ]
    initializers = [numpy_helper.from_array(value, name) for name, value in weights.items()]
    graph = helper.make_graph(nodes, "guardkit_tiny", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="guardkit.testing")
    model.ir_version = 8
    return model


def _prompt_classifier_graph(vocab: dict[str, int], words: dict[str, str]):  # type: ignore[no-untyped-def]
    """A bag-of-words prompt classifier: unsafe when any of ``words`` occurs anywhere in the prompt.

    Per token a row of logits (safe, unsafe, controversial, then the categories),
    max-pooled over the unmasked tokens: it reads the whole prompt at once, as a
    bidirectional classifier does. Its risk labels are in Qwen3Guard's order too.
    """
    from onnx import TensorProto, helper, numpy_helper

    cats = _PROMPT_CATEGORIES
    table = np.zeros((len(vocab), 3 + len(cats)), dtype=np.float32)
    table[:, 0] = 4.0  # safe
    for word, category in words.items():
        table[vocab[word], 1] = 8.0
        table[vocab[word], 3 + cats.index(category)] = 8.0
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["rows"]),  # [b, s, 3 + C]
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis_last"], ["mask3"]),
        helper.make_node("Sub", ["one", "mask3"], ["pad3"]),
        helper.make_node("Mul", ["pad3", "big"], ["penalty"]),
        helper.make_node("Sub", ["rows", "penalty"], ["masked"]),
        helper.make_node("ReduceMax", ["masked", "axis_seq"], ["pooled"], keepdims=0),  # [b, 3 + C]
        helper.make_node("Split", ["pooled", "split_sizes"], ["risk_logits", "category_logits"], axis=1),
    ]
    inits = [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis_last"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axis_seq"), numpy_helper.from_array(np.float32(1.0), "one"),
             numpy_helper.from_array(np.float32(1e4), "big"), numpy_helper.from_array(np.array([3, len(cats)], dtype=np.int64), "split_sizes")]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in ("input_ids", "attention_mask")]
    outputs = [helper.make_tensor_value_info("risk_logits", TensorProto.FLOAT, ["batch", 3]),
               helper.make_tensor_value_info("category_logits", TensorProto.FLOAT, ["batch", len(cats)])]
    graph = helper.make_graph(nodes, "guardkit_tiny_prompt", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="guardkit.testing")
    model.ir_version = 8
    return model


def build_tiny_bundle(out_dir: str | Path, *, max_positions: int = 128, seed: int = 0,
                      prompt_classifier_words: dict[str, str] | None = None, prompt_classifier_max_tokens: int = 16,
                      reply_check_offset: float | None = None, reply_classifier_words: dict[str, str] | None = None) -> Path:
    """Write a complete tiny model bundle (manifest, ONNX, tokenizer) to ``out_dir``.

    With ``prompt_classifier_words`` (word -> prompt category) the bundle also
    ships a prompt classifier (``prompt.onnx``) that reads exactly those words as
    unsafe, so tests can tell its verdicts from the stream model's prompt head.
    With ``reply_check_offset`` too, the manifest declares that classifier fit to
    judge replies (``prompt_model.reply_check``, that unsafe-logit offset): the
    words' logits are unsafe 8 against safe 4. With ``reply_classifier_words``
    as well, replies are judged by a graph of their own (``reply.onnx``, the
    manifest's ``reply_check.file``) that reads those words instead.
    """
    import onnx

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = _tokenizer(out / "tokenizer.json")
    model = _graph(_weights(vocab, max_positions, seed))
    onnx.checker.check_model(model)
    onnx.save(model, str(out / "model.onnx"))
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": "guardkit-tiny-test",
        "version": "0.0.0",
        "license": "Apache-2.0",
        "description": "Hand-wired contract test model (not a safety model).",
        "model_file": "model.onnx",
        "tokenizer_file": "tokenizer.json",
        "files": {name: file_entry(out / name) for name in ("model.onnx", "tokenizer.json")},
        "risk_labels": ["safe", "unsafe", "controversial"],
        "categories": list(_CATEGORIES),
        "prompt_risk_labels": ["safe", "unsafe", "controversial"],
        "prompt_categories": list(_PROMPT_CATEGORIES),
        "max_positions": max_positions,
        "state": {"num_layers": 1, "num_kv_heads": H, "head_dim": HD, "dtype": "float32"},
        "template": {"prompt": "[CLS] {prompt} [SEP]", "response_prefix": ""},
    }
    if prompt_classifier_words is not None:
        classifier = _prompt_classifier_graph(vocab, prompt_classifier_words)
        onnx.checker.check_model(classifier)
        onnx.save(classifier, str(out / "prompt.onnx"))
        manifest["files"]["prompt.onnx"] = file_entry(out / "prompt.onnx")  # type: ignore[index]
        manifest["prompt_model"] = {"file": "prompt.onnx", "max_tokens": prompt_classifier_max_tokens,
                                    "risk_labels": ["safe", "unsafe", "controversial"], "categories": list(_PROMPT_CATEGORIES)}
        if reply_check_offset is not None:
            manifest["prompt_model"]["reply_check"] = {"unsafe_logit_offset": reply_check_offset}  # type: ignore[index]
        if reply_check_offset is not None and reply_classifier_words is not None:
            reply_graph = _prompt_classifier_graph(vocab, reply_classifier_words)
            onnx.checker.check_model(reply_graph)
            onnx.save(reply_graph, str(out / "reply.onnx"))
            manifest["files"]["reply.onnx"] = file_entry(out / "reply.onnx")  # type: ignore[index]
            manifest["prompt_model"]["reply_check"]["file"] = "reply.onnx"  # type: ignore[index]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out
