"""StreamModel: one shared ONNX Runtime session per model bundle.

The model holds no per-stream state: a :class:`KVState` belongs to each
session and is passed in and returned by :meth:`StreamModel.step`. One
StreamModel may serve many threads at once (``InferenceSession.run`` is
thread-safe).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tokenizers import Tokenizer

from guardkit._resources import default_model_path
from guardkit.errors import GuardConfigError, ModelLoadError
from guardkit.kvcache import KVBuffer, capacity_for, split_attention
from guardkit.manifest import Manifest, load_manifest
from guardkit.prompt_model import PromptClassifier
from guardkit.providers import check_active, import_onnxruntime, providers_for
from guardkit.retokenizer import tokenizable
from guardkit.stepper import SlotPool
from guardkit.verdict import RISK_LEVELS

__all__ = ["KVState", "StepOutput", "StreamModel"]

_REQUIRED_INPUTS = ("input_ids", "attention_mask", "position_ids")
_REQUIRED_OUTPUTS = ("risk_logits", "category_logits")
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


@dataclass(frozen=True, eq=False)
class _BatchKV:
    """The present tensors of one batched call; states stepped in it are row views of these."""

    arrays: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class KVState:
    """Per-session model state: the KV cache and how many positions it covers.

    ``batch``/``row`` say that ``arrays`` are the views ``batch.arrays[i][row:row+1, :, -length:]``
    of a batched call's output (the row's tail; its head is masked padding), so the
    next batched call can feed that output back without gathering the streams'
    caches one by one. With an in-place cache (see :mod:`guardkit.kvcache`) ``batch``
    is a :class:`KVBuffer` and ``arrays`` are the views ``batch.arrays[i][row:row+1, :, :length]``.
    """

    arrays: tuple[np.ndarray, ...]
    length: int
    batch: _BatchKV | KVBuffer | None = None
    row: int = 0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)


@dataclass(frozen=True)
class StepOutput:
    """Probabilities for the new tokens of one step, in canonical order.

    ``risk`` is [k, 3] over (safe, controversial, unsafe); ``category`` is
    [k, C] over ``StreamModel.categories``. The prompt head's outputs are
    ``None`` when the model has no prompt head.
    """

    risk: np.ndarray
    category: np.ndarray
    prompt_risk: np.ndarray | None
    prompt_category: np.ndarray | None
    state: KVState


#: ONNX Runtime intra-op threads when ``threads=None``: one per model call (see :func:`session_options`).
DEFAULT_THREADS = 1


def session_options(ort: Any, threads: int | None = None) -> Any:
    """The ``SessionOptions`` every StreamModel uses.

    ``threads=None`` means one intra-op thread per call, with no spinning: a
    lone stream's step (a batch-1 product of a few hundred rows) is fastest on
    one thread, and concurrent calls (threads, the batcher's cohorts) run side
    by side, one per core. Spinning is off at any thread count: ONNX Runtime's
    default pool busy-waits between operators and burns the cores other streams
    and the sessions' Python need (``guardkit bench`` measures both).
    """
    if threads is not None and threads < 1:
        raise GuardConfigError(f"threads must be >= 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = DEFAULT_THREADS if threads is None else threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class StreamModel:
    """A loaded model bundle: manifest, tokenizer and ONNX Runtime session.

    ``threads``: ONNX Runtime intra-op threads per call (default one, never
    spinning; see :func:`session_options`). ``kv_buffer``: on the CPU the graph's
    attention is split at load so the KV cache is written in place instead of
    copied every step (:mod:`guardkit.kvcache`; needs ``onnx``, same outputs to
    float rounding); ``False`` runs the graph as it is.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        device: str = "auto",
        threads: int | None = None,
        verify: bool = True,
        trt_cache_dir: str | Path | None = None,
        fp16: bool = False,
        max_sessions: int | None = None,
        kv_buffer: bool | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else default_model_path()
        self.device = device
        self.manifest: Manifest = load_manifest(self.path, verify=verify)
        self.tokenizer = self._load_tokenizer()
        self._session = self._load_session(device, threads, trt_cache_dir, fp16, kv_buffer)
        self._check_contract()
        self._state_dtype = np.float16 if self.manifest.state.dtype == "float16" else np.float32
        self._probe()  # real output shapes and dtypes, before any session can fail (or fail open) on them
        m = self.manifest
        self.categories: tuple[str, ...] = m.categories
        load_graph = functools.partial(self._load_graph, device, threads, trt_cache_dir, fp16)
        self.prompt_classifier: PromptClassifier | None = PromptClassifier(self.path, m, load_graph) if m.prompt_model else None
        # the classifier that judges replies (reply check): its own graph when the manifest names one
        self.reply_classifier: PromptClassifier | None = self.prompt_classifier
        if m.prompt_model is not None and m.prompt_model.reply_file not in (None, m.prompt_model.file):
            self.reply_classifier = PromptClassifier(self.path, m, load_graph, file=m.prompt_model.reply_file)
        # the categories prompt verdicts are read in: the classifier's when the bundle has one
        self.prompt_categories: tuple[str, ...] = self.prompt_classifier.categories if self.prompt_classifier else (m.prompt_categories or ())
        self._risk_order = np.array([m.risk_labels.index(level) for level in RISK_LEVELS])
        prompt_labels = m.prompt_risk_labels or m.risk_labels
        self._prompt_risk_order = np.array([prompt_labels.index(level) for level in RISK_LEVELS])
        self.max_sessions = max_sessions
        self._slots = SlotPool(max_sessions)

    # -- loading ---------------------------------------------------------
    def _load_tokenizer(self) -> Tokenizer:
        """The tokenizer for untrusted text; the template's own tokenizer is kept as ``_control_tokenizer``.

        Text from users and LLMs is always ordinary text: ``[SEP]``, ``[MASK]``
        or ``<|im_end|>`` typed into a prompt or a response are encoded as the
        characters they are made of, never as the special tokens the template
        uses (which would let any text end the prompt or blind the model).
        Truncation and padding are off: every character is judged.
        """
        path = self.path / self.manifest.tokenizer_file
        try:
            control = Tokenizer.from_file(str(path))
            text = Tokenizer.from_str(control.to_str())
        except Exception as exc:  # tokenizers raises a bare Exception
            raise ModelLoadError(f"cannot load tokenizer: {exc}", path=str(path)) from None
        for tok in (control, text):
            tok.no_truncation()
            tok.no_padding()
        text.encode_special_tokens = True
        self._control_tokenizer = control
        return text

    def _load_session(self, device: str, threads: int | None, trt_cache_dir: str | Path | None, fp16: bool,
                      kv_buffer: bool | None = None) -> Any:
        """The stream model's session; on the CPU with its attention split to read an in-place cache (:mod:`guardkit.kvcache`).

        ``kv_buffer``: ``None`` splits when the graph allows it (and ``onnx`` is
        installed), ``False`` runs the graph as it is.
        """
        model_path = self.path / self.manifest.model_file
        graph = None
        if kv_buffer is not False and providers_for(device) == ["CPUExecutionProvider"]:
            graph = split_attention(model_path, self.manifest.state.num_layers)
        try:
            session = self._load_graph(device, threads, trt_cache_dir, fp16, model_path, graph=graph)
        except ModelLoadError:
            if graph is None:
                raise
            graph = None  # this onnxruntime refuses the rewrite: run the graph as it is
            session = self._load_graph(device, threads, trt_cache_dir, fp16, model_path)
        self._kv_buffer = graph is not None
        # MLAS runs a 2-row product (one stream's 2 tokens, or 2 streams' single tokens) through the
        # packed GEMM that 3+ rows use, at about twice a 1-row product's cost: split those on CPU
        self._split_pairs = session.get_providers()[0] == "CPUExecutionProvider"
        return session

    def _load_graph(self, device: str, threads: int | None, trt_cache_dir: str | Path | None, fp16: bool, model_path: Path,
                    graph: bytes | None = None) -> Any:
        """An ONNX Runtime session for one of the bundle's graphs (or ``graph``, a rewrite of it), on the chosen device."""
        ort = import_onnxruntime()
        providers = providers_for(device, fp16=fp16, trt_cache_dir=Path(trt_cache_dir) if trt_cache_dir else None)
        options = session_options(ort, threads)
        try:
            session = ort.InferenceSession(graph if graph is not None else str(model_path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise ModelLoadError(f"onnxruntime cannot load the model: {exc}", path=str(model_path)) from None
        check_active(device, session.get_providers())
        return session

    def _check_contract(self) -> None:
        model_file = str(self.path / self.manifest.model_file)
        inputs = {i.name for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        required_in = list(_REQUIRED_INPUTS) + self.past_names
        missing = [n for n in required_in if n not in inputs] + [n for n in _REQUIRED_OUTPUTS + tuple(self.present_names) if n not in outputs]
        if missing:
            raise ModelLoadError(f"the ONNX graph lacks the contract's tensors: {', '.join(missing)}", path=model_file)
        extra_inputs = inputs - set(required_in)
        if extra_inputs:
            raise ModelLoadError(f"the ONNX graph has inputs outside the contract: {', '.join(sorted(extra_inputs))}", path=model_file)
        self.has_prompt_head = "prompt_risk_logits" in outputs and "prompt_category_logits" in outputs
        self._output_names = [n for n in ("risk_logits", "category_logits", "prompt_risk_logits", "prompt_category_logits") if n in outputs]
        self._output_names += self.present_names
        self._check_declared_types()

    def _expected(self) -> dict[str, tuple[tuple[str, ...], tuple[int | None, ...]]]:
        """Contract tensor name -> (allowed ONNX types, shape with None for free dims)."""
        spec = self.manifest.state
        state_type = ("tensor(float16)",) if spec.dtype == "float16" else ("tensor(float)",)
        logits = ("tensor(float)", "tensor(float16)")
        ids = ("tensor(int64)",)
        heads = {
            "risk_logits": 3,
            "category_logits": len(self.manifest.categories),
            "prompt_risk_logits": 3,
            "prompt_category_logits": len(self.manifest.prompt_categories or ()) or None,
        }
        expected: dict[str, tuple[tuple[str, ...], tuple[int | None, ...]]] = {
            "input_ids": (ids, (None, None)), "attention_mask": (ids, (None, None)), "position_ids": (ids, (None, None)),
        }
        expected.update({name: (logits, (None, None, width)) for name, width in heads.items()})
        kv = (None, spec.num_kv_heads, None, spec.head_dim)
        expected.update({name: (state_type, kv) for name in self.past_names + self.present_names})
        return expected

    def _check_declared_types(self) -> None:
        """The graph's declared element types and fixed dimensions must fit the manifest."""
        model_file = str(self.path / self.manifest.model_file)
        expected = self._expected()
        for arg in [*self._session.get_inputs(), *self._session.get_outputs()]:
            if arg.name not in expected:
                continue
            types, shape = expected[arg.name]
            if arg.type not in types:
                raise ModelLoadError(f"{arg.name} is {arg.type}; the contract needs {' or '.join(types)}", path=model_file)
            declared = arg.shape
            if declared is None:  # rank unknown: the probe step checks it
                continue
            if len(declared) != len(shape):
                raise ModelLoadError(f"{arg.name} has rank {len(declared)}; the contract needs rank {len(shape)}", path=model_file)
            for axis, (got, want) in enumerate(zip(declared, shape)):
                if want is not None and isinstance(got, int) and got != want:
                    raise ModelLoadError(
                        f"{arg.name} has {got} at axis {axis}; the manifest implies {want} ({self._why(arg.name)})", path=model_file
                    )

    def _why(self, name: str) -> str:
        if name.startswith(("present.", "past_key_values.")):
            return "state.num_kv_heads and state.head_dim"
        if name.endswith("risk_logits"):
            return "three risk levels"
        return "prompt_categories" if name.startswith("prompt_") else "categories"

    def _probe(self) -> None:
        """Run one token through the model and check every output's shape and type against the contract.

        Symbolic dimensions are only resolved at run time, so a head with the
        wrong width would otherwise load and then fail (or, failing open, pass)
        every step.
        """
        model_file = str(self.path / self.manifest.model_file)
        ids = (self.prompt_token_ids(None) or [0])[:1]
        try:
            named, _ = self._run_raw(self.empty_state(), ids)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            raise ModelLoadError(f"the model fails a one-token test step: {exc}", path=model_file) from None
        expected = self._expected()
        for name, array in named.items():
            types, shape = expected[name]
            if array.dtype not in [_NUMPY_TYPES[t] for t in types]:
                raise ModelLoadError(f"{name} came out as {array.dtype}; the contract needs {' or '.join(types)}", path=model_file)
            actual = tuple(int(d) for d in array.shape)
            # one row, one token: logits [1, 1, width], present [1, heads, 1, head_dim]
            wanted = (1, shape[1], 1, shape[3]) if name.startswith("present.") else (1, 1, shape[2])
            if len(actual) != len(wanted) or any(w is not None and a != w for a, w in zip(actual, wanted)):
                shown = tuple("?" if w is None else w for w in wanted)
                raise ModelLoadError(f"{name} came out with shape {list(actual)} for one token; the contract needs {list(shown)}"
                                     f" ({self._why(name)})", path=model_file)

    @property
    def past_names(self) -> list[str]:
        return [f"past_key_values.{i}.{kind}" for i in range(self.manifest.state.num_layers) for kind in ("key", "value")]

    @property
    def present_names(self) -> list[str]:
        return [f"present.{i}.{kind}" for i in range(self.manifest.state.num_layers) for kind in ("key", "value")]

    @property
    def max_positions(self) -> int:
        return self.manifest.max_positions

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    # -- sessions accounting (memory stays bounded) ----------------------
    def acquire_slot(self) -> None:
        """Take a session slot (``SessionLimitError`` at ``max_sessions``)."""
        self._slots.acquire()

    def release_slot(self) -> None:
        """Give a slot back; takes no lock, so a finalizer may call it anywhere (see :class:`SlotPool`)."""
        self._slots.release()

    @property
    def live_sessions(self) -> int:
        return self._slots.live

    # -- inference -------------------------------------------------------
    def empty_state(self) -> KVState:
        spec = self.manifest.state
        empty = np.zeros((1, spec.num_kv_heads, 0, spec.head_dim), dtype=self._state_dtype)
        return KVState(arrays=tuple(empty for _ in self.past_names), length=0)

    def run(self, state: KVState, token_ids: Sequence[int]) -> tuple[dict[str, np.ndarray], KVState]:
        """Run new tokens after ``state``; return the raw logits (batch dim dropped) and the new state."""
        named, new_state = self._run_raw(state, token_ids)
        logits = {n: named[n][0] for n in self._output_names if not n.startswith("present.")}
        return logits, new_state

    def _run_raw(self, state: KVState, token_ids: Sequence[int]) -> tuple[dict[str, np.ndarray], KVState]:
        """One unbatched call: every contract output by name (batch dim kept; present = the whole new state) and the new state."""
        k = len(token_ids)
        if k == 0:
            raise ValueError("run() needs at least one token")
        if state.length + k > self.max_positions:
            raise ValueError(f"{state.length + k} positions exceed the model's max_positions {self.max_positions}")
        if k == 2 and self._split_pairs:  # two 1-row calls cost less than one 2-row call (see _load_session)
            first, middle = self._run_raw(state, token_ids[:1])
            second, new_state = self._run_raw(middle, token_ids[1:])
            return {n: second[n] if n.startswith("present.") else np.concatenate([first[n], second[n]], axis=1)
                    for n in self._output_names}, new_state
        if self._kv_buffer:
            named, new_states = self._run_buffered([state], [list(token_ids)])
            return named, new_states[0]
        feeds: dict[str, np.ndarray] = {
            "input_ids": np.asarray(token_ids, dtype=np.int64).reshape(1, k),
            "attention_mask": np.ones((1, state.length + k), dtype=np.int64),
            "position_ids": np.arange(state.length, state.length + k, dtype=np.int64).reshape(1, k),
        }
        feeds.update(zip(self.past_names, state.arrays))
        results = self._session.run(self._output_names, feeds)
        named = dict(zip(self._output_names, results))
        return named, KVState(arrays=tuple(named[n] for n in self.present_names), length=state.length + k)

    def _run_buffered(self, states: Sequence[KVState], token_lists: Sequence[Sequence[int]]) -> tuple[dict[str, np.ndarray], list[KVState]]:
        """Rows stepped on the split-attention graph, reading and writing a :class:`KVBuffer` in place.

        The past fed is the buffer itself (all its capacity; positions past a
        row's length are masked), or nothing when every row is empty (a prefill
        reads no masked positions). Each row's new tokens are right-aligned
        (``[pad][new]``), as in :meth:`step_many`. Returns the outputs (present =
        the first row's new state, as views) and every row's new state.
        """
        lengths = [s.length for s in states]
        adds = [len(ids) for ids in token_lists]
        rows, seq = len(states), max(adds)
        buffer = self._claim(states, lengths, adds)
        fed = buffer.capacity if max(lengths) else 0
        input_ids = np.zeros((rows, seq), dtype=np.int64)
        position_ids = np.zeros((rows, seq), dtype=np.int64)
        mask = np.zeros((rows, fed + seq), dtype=np.int64)
        for row, (ids, length, k) in enumerate(zip(token_lists, lengths, adds)):
            input_ids[row, seq - k :] = ids
            position_ids[row, seq - k :] = np.arange(length, length + k)
            mask[row, :length] = 1
            mask[row, fed + seq - k :] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask, "position_ids": position_ids}
        feeds.update((name, array[:, :, :fed]) for name, array in zip(self.past_names, buffer.arrays))
        results = self._session.run(self._output_names, feeds)
        named = dict(zip(self._output_names, results))
        for array, name in zip(buffer.arrays, self.present_names):
            new = named[name]
            for row, (length, k) in enumerate(zip(lengths, adds)):
                array[row, :, length : length + k] = new[row, :, seq - k :]
        new_states = [KVState(tuple(a[row : row + 1, :, : length + k] for a in buffer.arrays), length + k, buffer, row)
                      for row, (length, k) in enumerate(zip(lengths, adds))]
        named.update(zip(self.present_names, new_states[0].arrays))
        return named, new_states

    def _claim(self, states: Sequence[KVState], lengths: list[int], adds: list[int]) -> KVBuffer:
        """The buffer these rows are written in: theirs when they are its rows in order and each is its row's newest
        state with room left; else a fresh one holding a copy of each state (one copy, then in place again)."""
        buffer = states[0].batch
        if (isinstance(buffer, KVBuffer) and buffer.rows == len(states) and all(s.batch is buffer for s in states)
                and [s.row for s in states] == list(range(len(states))) and buffer.claim(range(len(states)), lengths, adds)):
            return buffer
        spec = self.manifest.state
        needed = max(n + k for n, k in zip(lengths, adds))
        fresh = KVBuffer(len(states), capacity_for(needed, self.max_positions), len(self.past_names), spec.num_kv_heads,
                         spec.head_dim, self._state_dtype)
        for row, state in enumerate(states):
            if state.length:
                for target, array in zip(fresh.arrays, state.arrays):
                    target[row, :, : state.length] = array[0]
            fresh.filled[row] = state.length
        if not fresh.claim(range(len(states)), lengths, adds):  # pragma: no cover - a fresh buffer always has room
            raise RuntimeError("a fresh KV buffer refused its own rows")
        return fresh

    def step(self, state: KVState, token_ids: Sequence[int], *, prompt_head: bool = False) -> StepOutput:
        """Score ``token_ids`` (one or many) after ``state``; probabilities in canonical order.

        ``prompt_head`` also converts the prompt head's outputs (only needed at
        the prompt's last token, so response steps skip the work).
        """
        logits, new_state = self.run(state, token_ids)
        return self._to_probs(logits, new_state, prompt_head)

    def _to_probs(self, logits: dict[str, np.ndarray], new_state: KVState, prompt_head: bool = False) -> StepOutput:
        return StepOutput(*self._probabilities(logits, prompt_head), state=new_state)

    def _probabilities(self, logits: dict[str, np.ndarray], prompt_head: bool) -> tuple[np.ndarray, ...]:
        """Softmax of the heads' logits (any leading dims), risk in canonical order; prompt head's only when asked."""
        risk = _softmax(logits["risk_logits"].astype(np.float32))[..., self._risk_order]
        category = _softmax(logits["category_logits"].astype(np.float32))
        prompt_risk = prompt_category = None
        if prompt_head and self.has_prompt_head:
            prompt_risk = _softmax(logits["prompt_risk_logits"].astype(np.float32))[..., self._prompt_risk_order]
            prompt_category = _softmax(logits["prompt_category_logits"].astype(np.float32))
        return risk, category, prompt_risk, prompt_category

    def step_many(self, states: Sequence[KVState], token_lists: Sequence[Sequence[int]], *, prompt_head: bool = False) -> list[StepOutput]:
        """Score several independent streams in one ONNX Runtime call.

        Ragged lengths share the batch through ``attention_mask``: each row is
        ``[pad][past][pad][new]`` with pads masked out, so every stream's outputs
        equal what :meth:`step` gives it alone (the causal mask only looks at
        real positions). Per-stream KV state is gathered in (see :meth:`_gather`) and
        handed back as views of the batch output where a row has no pad between its
        past and its new tokens (always, for single-token steps).
        """
        if len(states) != len(token_lists):
            raise ValueError("states and token_lists differ in length")
        if len(states) == 1 or (len(states) == 2 and self._split_pairs and len(token_lists[0]) == len(token_lists[1]) == 1):
            # alone, or two single tokens: 1-row calls (a 2-row call costs about two, see _load_session)
            return [self.step(state, ids, prompt_head=prompt_head) for state, ids in zip(states, token_lists)]
        for state, ids in zip(states, token_lists):
            if not ids:
                raise ValueError("every stream needs at least one token")
            if state.length + len(ids) > self.max_positions:
                raise ValueError(f"{state.length + len(ids)} positions exceed the model's max_positions {self.max_positions}")
        if self._kv_buffer:
            named, new_states = self._run_buffered(states, [list(ids) for ids in token_lists])
            seq = max(len(ids) for ids in token_lists)
            probs = self._probabilities({n: named[n] for n in self._output_names if not n.startswith("present.")}, prompt_head)
            return [StepOutput(*(None if p is None else p[row, seq - len(ids) :] for p in probs), state=state)
                    for row, (ids, state) in enumerate(zip(token_lists, new_states))]
        batch = len(states)
        past = max(s.length for s in states)
        seq = max(len(ids) for ids in token_lists)
        input_ids = np.zeros((batch, seq), dtype=np.int64)
        position_ids = np.zeros((batch, seq), dtype=np.int64)
        mask = np.zeros((batch, past + seq), dtype=np.int64)
        pasts = self._gather(states, past)
        for row, (state, ids) in enumerate(zip(states, token_lists)):
            k, length = len(ids), state.length
            input_ids[row, seq - k :] = ids
            position_ids[row, seq - k :] = np.arange(length, length + k)
            mask[row, past - length : past] = 1
            mask[row, past + seq - k :] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask, "position_ids": position_ids, **dict(zip(self.past_names, pasts))}
        named = self.run_batch(feeds)
        presents = _BatchKV(tuple(named[n] for n in self.present_names))
        probs = self._probabilities({n: named[n] for n in self._output_names if not n.startswith("present.")}, prompt_head)
        outputs: list[StepOutput] = []
        for row, (state, ids) in enumerate(zip(states, token_lists)):
            k, length = len(ids), state.length
            if k == seq:  # no pad between past and new: the row's tail of the batch output is its state, no copy
                total = past + seq
                new_state = KVState(tuple(a[row : row + 1, :, total - length - k :] for a in presents.arrays), length + k, presents, row)
            else:
                arrays = tuple(np.concatenate([a[row : row + 1, :, past - length : past], a[row : row + 1, :, past + seq - k :]], axis=2)
                               for a in presents.arrays)
                new_state = KVState(arrays, length + k)
            outputs.append(StepOutput(*(None if p is None else p[row, seq - k :] for p in probs), state=new_state))
        return outputs

    def _gather(self, states: Sequence[KVState], past: int) -> list[np.ndarray]:
        """The batch's past tensors: [batch, heads, past, head_dim], ragged rows left-padded with zeros.

        Streams last stepped together as rows of one batched call are taken from
        that call's output, where each row already ends with its state: as is
        when they are all of its rows in order (no copy), else with one ``take``
        per tensor instead of a copy per stream. Only the left pads are zeroed
        (no state's view covers them).
        """
        first = states[0].batch
        if first is not None and first.arrays[0].shape[2] == past and all(s.batch is first for s in states):
            rows = [s.row for s in states]
            if rows == list(range(len(first.arrays[0]))):
                pasts = list(first.arrays)
            else:
                pasts = [np.take(a, rows, axis=0) for a in first.arrays]
            for row, state in enumerate(states):
                if state.length < past:
                    for buffer in pasts:
                        buffer[row, :, : past - state.length] = 0
            return pasts
        if all(s.length == past for s in states):  # no left padding: one concatenate per tensor
            return [np.concatenate(column, axis=0) for column in zip(*(s.arrays for s in states))]
        spec = self.manifest.state
        pasts = [np.zeros((len(states), spec.num_kv_heads, past, spec.head_dim), dtype=self._state_dtype) for _ in self.past_names]
        for row, state in enumerate(states):
            if state.length:
                for buffer, array in zip(pasts, state.arrays):
                    buffer[row, :, past - state.length :, :] = array[0]
        return pasts

    def run_batch(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run prepared batch feeds (used by the batching scheduler and benchmarks)."""
        results = self._session.run(self._output_names, feeds)
        return dict(zip(self._output_names, results))

    # -- rendering -------------------------------------------------------
    def prompt_token_ids(self, prompt: str | None) -> list[int]:
        """The rendered prompt template: its own text may hold special tokens, the user's ``prompt`` never does."""
        ids: list[int] = []
        for i, part in enumerate(self.manifest.template.prompt.split("{prompt}")):
            if i and prompt:
                ids += self.tokenizer.encode(tokenizable(prompt), add_special_tokens=False).ids
            if part:
                ids += self._control_tokenizer.encode(part, add_special_tokens=False).ids
        return ids

    def template_head_tail(self) -> tuple[list[int], list[int]]:
        """The ids of the prompt template's text before and after ``{prompt}`` (special tokens as such)."""
        before, _, after = self.manifest.template.prompt.partition("{prompt}")
        encode = self._control_tokenizer.encode
        return (encode(before, add_special_tokens=False).ids if before else [],
                encode(after, add_special_tokens=False).ids if after else [])

    def classify_prompt(self, windows: Sequence[Sequence[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The prompt classifier's (risk, category) probabilities for the rendered prompt's windows.

        Each window (as :func:`guardkit.kvwindow.prompt_windows` cuts them) is cut
        again to the classifier's ``max_tokens``; all pieces run in one call.
        """
        if self.prompt_classifier is None:
            raise RuntimeError("this bundle has no prompt classifier")
        head, tail = self.template_head_tail()
        pieces = [piece for window in windows for piece in self.prompt_classifier.windows(window, head, tail)]
        return self.prompt_classifier.classify(pieces)

    def classify_reply_windows(self, windows: Sequence[Sequence[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The reply classifier's raw (risk, category) probabilities for rendered windows of at most ``max_tokens``."""
        if self.reply_classifier is None:
            raise RuntimeError("this bundle has no classifier for replies")
        return self.reply_classifier.classify(windows)

    @functools.cached_property
    def reply_window(self) -> int:
        """How many of a reply's last guard tokens one reply check reads (0: this bundle has no reply check)."""
        spec = self.manifest.prompt_model
        if self.prompt_classifier is None or spec is None or spec.reply_check is None:
            return 0
        head, tail = self.template_head_tail()
        return max(1, spec.max_tokens - len(head) - len(tail))

    def classify_reply(self, token_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The reply classifier's (risk, category) probabilities for a reply's last :attr:`reply_window` guard tokens.

        The tokens are wrapped in the prompt template's head and tail, as the
        classifier was trained, and judged by :meth:`classify_reply_windows` (so a
        served model runs it on its replica); the manifest's reply offset is then added
        to the unsafe logit, which on probabilities is scaling p(unsafe) by
        ``exp(offset)`` and renormalising. A reply is never a jailbreak, so that
        category (when the classifier has it) gets no probability.
        """
        window = self.reply_window
        spec = self.manifest.prompt_model
        if not window or spec is None or spec.reply_check is None:
            raise RuntimeError("this bundle's classifier does not judge replies (manifest prompt_model.reply_check)")
        head, tail = self.template_head_tail()
        [(risk, category)] = self.classify_reply_windows([head + list(token_ids[-window:]) + tail])
        risk = np.asarray(risk, dtype=np.float64).copy()
        risk[RISK_LEVELS.index("unsafe")] *= np.exp(spec.reply_check.unsafe_logit_offset)
        risk /= risk.sum()
        if "jailbreak" in self.prompt_categories and len(category) > 1:
            category = np.array(category, copy=True)
            category[self.prompt_categories.index("jailbreak")] = 0.0
        return risk, category

    def response_prefix_ids(self) -> list[int]:
        prefix = self.manifest.template.response_prefix
        return self._control_tokenizer.encode(prefix, add_special_tokens=False).ids if prefix else []

    def special_token_ids(self) -> frozenset[int]:
        """Ids of the tokenizer's special tokens (never produced from untrusted text)."""
        import json

        added = json.loads(self._control_tokenizer.to_str()).get("added_tokens", [])
        return frozenset(int(a["id"]) for a in added if a.get("special"))

    def __repr__(self) -> str:
        return f"StreamModel({self.manifest.name!r} {self.manifest.version}, path={str(self.path)!r}, providers={self.providers})"
