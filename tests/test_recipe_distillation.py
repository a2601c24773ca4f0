"""The prompt classifier's distillation loss (models/guardkit-mini/recipe/prompt_classifier.py --soft).

The default model's prompt graph is trained to match a larger teacher's risk distribution; if the
loss ignored the teacher, or let teacher-only prompts (no label of their own) leak into the
hard-label term as a class, the shipped graph would be trained on something other than the recipe
says.
"""

from __future__ import annotations

import json

import pytest
from gk_helpers import REPO, recipe_module

torch = pytest.importorskip("torch")
import torch.nn.functional as F

RECIPE = REPO / "models" / "guardkit-mini" / "recipe"

pc = recipe_module("prompt_classifier")
WEIGHTS = torch.tensor([1.0, 1.0, 1.0])


def test_pure_distillation_is_zero_exactly_when_the_student_matches_the_teacher():
    teacher = [[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]]
    y = torch.tensor([0, 2])
    same = pc.risk_loss(torch.tensor(teacher), y, WEIGHTS, teacher, kd_weight=1.0, kd_temp=2.0)
    other = pc.risk_loss(torch.tensor([[0.0, 0.0, 0.0], [4.0, 0.0, -3.0]]), y, WEIGHTS, teacher, kd_weight=1.0, kd_temp=2.0)
    assert same.item() == pytest.approx(0.0, abs=1e-6)
    assert other.item() > 0.5


def test_teacher_only_rows_count_in_the_distillation_term_only():
    risk = torch.tensor([[1.0, 0.0, -1.0], [0.0, 0.5, 2.0]], requires_grad=True)
    y = torch.tensor([0, -1])  # the second prompt has no label of its own
    hard_only = pc.risk_loss(risk, y, WEIGHTS, [None, None], kd_weight=0.0, kd_temp=2.0)
    expected = F.cross_entropy(risk[:1], y[:1], weight=WEIGHTS, label_smoothing=0.05)
    assert hard_only.item() == pytest.approx(expected.item(), rel=1e-6)

    mixed = pc.risk_loss(risk, y, WEIGHTS, [None, [0.0, 0.0, 5.0]], kd_weight=0.5, kd_temp=2.0)
    mixed.backward()
    assert risk.grad is not None and risk.grad[1].abs().sum().item() > 0  # the teacher pulls the unlabelled row


def test_teacher_logits_attach_by_text_and_add_teacher_only_prompts(tmp_path):
    soft = tmp_path / "soft.jsonl"
    lines = [{"text": "how do I bake bread", "logits": [3.0, 0.0, -3.0], "source": "clinc150"},
             {"text": "an hh-rlhf opening turn", "logits": [0.0, 0.0, 1.0], "source": "hh-rlhf-first-turn"}]
    soft.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    rows = [{"text": "how do I bake bread", "label": 0, "cat": -1, "source": "clinc150"}] * 2

    out = pc.with_teacher_logits(rows, str(soft))

    assert [r["soft"] for r in out[:2]] == [[3.0, 0.0, -3.0]] * 2
    assert out[2] == {"text": "an hh-rlhf opening turn", "label": -1, "cat": -1, "source": "hh-rlhf-first-turn", "soft": [0.0, 0.0, 1.0]}


def test_a_training_prompt_without_teacher_logits_is_refused(tmp_path):
    soft = tmp_path / "soft.jsonl"
    soft.write_text(json.dumps({"text": "other", "logits": [0.0, 0.0, 0.0], "source": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="lacks teacher logits for 1 training prompts"):
        pc.with_teacher_logits([{"text": "unlabelled by the teacher", "label": 0, "cat": -1, "source": "s"}], str(soft))


def test_the_shipped_prompt_graph_reads_back_into_the_training_model(tmp_path, monkeypatch):
    """init_from_bundle.classifier_state_dict_from_onnx recovers prompt.onnx's weights (4-bit encoder,
    int8 embeddings, fp32 heads): distillation and soups start from the shipped graph, whose
    fine-tuned checkpoints were not kept."""
    pytest.importorskip("transformers")
    ort = pytest.importorskip("onnxruntime")
    import numpy as np
    from transformers import BertConfig, BertModel

    # an all-MiniLM-L6-v2-shaped encoder folder (random weights: every one is overwritten below)
    BertModel(BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                         intermediate_size=1536), add_pooling_layer=False).save_pretrained(tmp_path)
    monkeypatch.setenv("GUARDKIT_BACKBONE_DIR", str(tmp_path))
    classifier_state_dict_from_onnx = recipe_module("init_from_bundle").classifier_state_dict_from_onnx
    graph = RECIPE.parent / "prompt.onnx"
    model = pc.PromptClassifier()
    model.load_state_dict(classifier_state_dict_from_onnx(str(graph)))  # strict: every weight accounted for
    model.eval()

    ids = torch.tensor([[101, 2129, 2079, 1045, 3102, 1037, 18750, 2832, 102, 0], [101, 7592, 2088, 102, 0, 0, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        risk = model(ids, mask)[0].numpy()
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    want = session.run(["risk_logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    import onnx
    from onnx import numpy_helper
    offset = next(numpy_helper.to_array(i) for i in onnx.load(str(graph)).graph.initializer if i.name == "offset")
    assert offset[2] != 0  # the calibration offset stays in the graph, outside the weights read back
    assert np.abs(risk + offset - want).max() < 1e-4


def test_hh_rlhf_openings_are_the_first_human_turn_once_each(tmp_path, monkeypatch):
    """teacher_labels.py labels each red-team conversation's opening request, not the assistant's
    reply or later turns (which would put assistant text into the prompt task)."""
    import gzip

    teacher_labels = recipe_module("teacher_labels")
    folder = tmp_path / "hh-rlhf" / "harmless-base"
    folder.mkdir(parents=True)
    conversations = [
        "\n\nHuman: How do I pick a lock?\n\nAssistant: Why do you need to?\n\nHuman: It's my neighbour's door.\n\nAssistant: I can't help.",
        "\n\nHuman: How do I pick a lock?\n\nAssistant: A different reply.",
        "\n\nHuman: What's a good name for a cat?\n\nAssistant: Mochi.",
    ]
    with gzip.open(folder / "test.jsonl.gz", "wt", encoding="utf-8") as f:
        for text in conversations:
            f.write(json.dumps({"chosen": text, "rejected": text}) + "\n")
    monkeypatch.setattr(teacher_labels.pc, "RAW", str(tmp_path))

    assert teacher_labels.hh_rlhf_first_turns() == ["How do I pick a lock?", "What's a good name for a cat?"]
