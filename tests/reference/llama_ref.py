"""Independent NumPy reference of the Llama decoder forward pass (the math of HF LlamaForCausalLM).

This is the "other implementation" that frugal's C++ engine is checked against. It is written for
readability, not speed, and computes in float64 by default (float32 on request, to estimate how far an
honest float32 engine may drift from the float64 result).

Conventions (shapes are written outermost-first, like NumPy):
  * A linear weight W has shape [out_features, in_features]; y = x @ W.T (HF nn.Linear).
  * Activations of a sequence are [T, dim]; per-head tensors are [heads, T, head_dim].
  * Q/K rows come in one of two orders, recorded in Config.rope_pairing:
      "adjacent": GGUF llama files and llama2.c checkpoints; RoPE rotates the pairs (x[2i], x[2i+1]).
      "half":     Hugging Face order; RoPE rotates the pairs (x[i], x[i + head_dim/2]) ("rotate_half").
    Both use the frequency theta_i = base^(-2i/head_dim), i in [0, head_dim/2), angle = pos * theta_i.
    The GGUF converter turns HF rows into adjacent order; unpermute_qk_rows() undoes it, and
    load_gguf(..., layout="hf") gives the same model in HF order (make_model_goldens.py asserts that
    both orders produce the same logits, which checks the permutation fact independently).

Loaders:
  * load_gguf(path)     GGUF via llama.cpp's gguf-py (GGUFReader + gguf.quants.dequantize).
  * load_llama2c(path)  llama2.c checkpoint (7 x int32 header, then float32 arrays; see
                        /work/shared/data/README.md). RoPE base 10000, RMSNorm eps 1e-5.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import numpy as np

# ----------------------------------------------------------------------------------------------------
# Model description
# ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Config:
    dim: int  # residual stream width
    hidden_dim: int  # SwiGLU inner width
    n_layers: int
    n_heads: int  # query heads
    n_kv_heads: int  # key/value heads (GQA when < n_heads)
    vocab_size: int
    rope_base: float
    norm_eps: float
    rope_pairing: str  # "adjacent" | "half" (see module docstring)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_groups(self) -> int:
        """Query heads per KV head; query head h reads KV head h // kv_groups."""
        return self.n_heads // self.n_kv_heads


@dataclasses.dataclass
class Layer:
    attn_norm: np.ndarray  # [dim]
    wq: np.ndarray  # [n_heads * head_dim, dim]
    wk: np.ndarray  # [n_kv_heads * head_dim, dim]
    wv: np.ndarray  # [n_kv_heads * head_dim, dim]
    wo: np.ndarray  # [dim, n_heads * head_dim]
    ffn_norm: np.ndarray  # [dim]
    w_gate: np.ndarray  # [hidden_dim, dim]   (HF gate_proj, GGUF ffn_gate, llama2.c w1)
    w_up: np.ndarray  # [hidden_dim, dim]     (HF up_proj,   GGUF ffn_up,   llama2.c w3)
    w_down: np.ndarray  # [dim, hidden_dim]   (HF down_proj, GGUF ffn_down, llama2.c w2)


@dataclasses.dataclass
class Model:
    config: Config
    tok_embd: np.ndarray  # [vocab, dim]
    layers: list[Layer]
    out_norm: np.ndarray  # [dim]
    w_out: np.ndarray  # [vocab, dim]; the very same array as tok_embd when embeddings are tied

    @property
    def dtype(self) -> np.dtype:
        return self.tok_embd.dtype

    def astype(self, dtype) -> "Model":
        """A copy of the model with every array converted to dtype (ties are kept)."""
        tied = self.w_out is self.tok_embd
        cast = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
        layers = [Layer(**{f.name: cast(getattr(l, f.name)) for f in dataclasses.fields(Layer)})
                  for l in self.layers]
        emb = cast(self.tok_embd)
        return Model(self.config, emb, layers, cast(self.out_norm), emb if tied else cast(self.w_out))


# ----------------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------------


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """x: [T, dim], w: [dim]. HF LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * w."""
    ms = np.mean(x * x, axis=-1, keepdims=True)
    return x / np.sqrt(ms + x.dtype.type(eps)) * w


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


def rope_cos_sin(positions: np.ndarray, head_dim: int, base: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin of angle[t, i] = positions[t] * base^(-2i/head_dim); both [T, head_dim/2].

    Angles are formed in float64 and only then rounded to dtype.
    """
    i = np.arange(head_dim // 2, dtype=np.float64)
    theta = base ** (-2.0 * i / head_dim)  # [head_dim/2]
    angle = positions.astype(np.float64)[:, None] * theta[None, :]
    return np.cos(angle).astype(dtype), np.sin(angle).astype(dtype)


def rope_adjacent(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """x: [heads, T, head_dim]; rotates (x[2i], x[2i+1]) by angle[t, i]."""
    x0 = x[..., 0::2]
    x1 = x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def rope_half(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """x: [heads, T, head_dim]; HF rotate_half: rotates (x[i], x[i + head_dim/2]) by angle[t, i]."""
    half = x.shape[-1] // 2
    x0 = x[..., :half]
    x1 = x[..., half:]
    return np.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)


def softmax_last(x: np.ndarray) -> np.ndarray:
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=-1, keepdims=True)


class KVCache:
    """Keys/values of the positions seen so far: per layer k, v of shape [n_kv_heads, S, head_dim].

    Keys are stored after RoPE, as in every Llama implementation.
    """

    def __init__(self, n_layers: int):
        self.k: list[np.ndarray | None] = [None] * n_layers
        self.v: list[np.ndarray | None] = [None] * n_layers

    @property
    def length(self) -> int:
        return 0 if self.k[0] is None else self.k[0].shape[1]

    def append(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.k[layer] is None:
            self.k[layer], self.v[layer] = k, v
        else:
            self.k[layer] = np.concatenate([self.k[layer], k], axis=1)
            self.v[layer] = np.concatenate([self.v[layer], v], axis=1)
        return self.k[layer], self.v[layer]


# ----------------------------------------------------------------------------------------------------
# Forward pass
# ----------------------------------------------------------------------------------------------------


def attention(model: Model, layer: Layer, li: int, x: np.ndarray, start: int,
              cache: KVCache | None) -> np.ndarray:
    """Causal GQA self-attention. x: [T, dim] (already normed), tokens at positions start..start+T-1."""
    cfg = model.config
    T = x.shape[0]
    hd = cfg.head_dim
    dt = x.dtype.type

    q = (x @ layer.wq.T).reshape(T, cfg.n_heads, hd).transpose(1, 0, 2)  # [H, T, hd]
    k = (x @ layer.wk.T).reshape(T, cfg.n_kv_heads, hd).transpose(1, 0, 2)  # [Hkv, T, hd]
    v = (x @ layer.wv.T).reshape(T, cfg.n_kv_heads, hd).transpose(1, 0, 2)  # [Hkv, T, hd]

    positions = np.arange(start, start + T)
    cos, sin = rope_cos_sin(positions, hd, cfg.rope_base, x.dtype)
    rope = rope_adjacent if cfg.rope_pairing == "adjacent" else rope_half
    q = rope(q, cos, sin)
    k = rope(k, cos, sin)

    if cache is not None:
        k, v = cache.append(li, k, v)  # now [Hkv, S, hd] with S = start + T
    S = k.shape[1]
    assert S == start + T

    # GQA: query head h uses KV head h // kv_groups.
    k_full = np.repeat(k, cfg.kv_groups, axis=0)  # [H, S, hd]
    v_full = np.repeat(v, cfg.kv_groups, axis=0)  # [H, S, hd]

    scores = (q @ k_full.transpose(0, 2, 1)) * dt(1.0 / math.sqrt(hd))  # [H, T, S]
    # Causal mask: query t (absolute position start + t) sees keys s <= start + t.
    visible = np.arange(S)[None, :] <= (start + np.arange(T))[:, None]  # [T, S]
    scores = np.where(visible[None, :, :], scores, dt(-np.inf))
    probs = softmax_last(scores)  # [H, T, S]
    out = probs @ v_full  # [H, T, hd]
    out = out.transpose(1, 0, 2).reshape(T, cfg.n_heads * hd)  # [T, H*hd]
    return out @ layer.wo.T  # [T, dim]


def feed_forward(layer: Layer, x: np.ndarray) -> np.ndarray:
    """SwiGLU: down(silu(gate(x)) * up(x)). x: [T, dim] (already normed)."""
    return (silu(x @ layer.w_gate.T) * (x @ layer.w_up.T)) @ layer.w_down.T


def forward(model: Model, tokens, cache: KVCache | None = None) -> np.ndarray:
    """Logits [T, vocab] for every position of tokens (a list of ids).

    Without a cache the tokens are positions 0..T-1. With a cache they continue the cached sequence
    (positions cache.length..) and their keys/values are appended to it.
    """
    cfg = model.config
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.ndim != 1 or tokens.size == 0:
        raise ValueError("tokens must be a non-empty 1-D list of ids")
    if tokens.min() < 0 or tokens.max() >= cfg.vocab_size:
        raise ValueError("token id out of range")
    start = 0 if cache is None else cache.length

    h = model.tok_embd[tokens]  # [T, dim]
    for li, layer in enumerate(model.layers):
        h = h + attention(model, layer, li, rms_norm(h, layer.attn_norm, cfg.norm_eps), start, cache)
        h = h + feed_forward(layer, rms_norm(h, layer.ffn_norm, cfg.norm_eps))
    h = rms_norm(h, model.out_norm, cfg.norm_eps)
    return h @ model.w_out.T  # [T, vocab]


@dataclasses.dataclass
class GreedyResult:
    prompt_logits: np.ndarray  # [T_prompt, vocab]
    ids: list[int]  # generated ids
    top1: list[float]  # logit of each generated id (the maximum)
    top2: list[float]  # second-largest logit at that step
    step_logits: list[np.ndarray]  # [vocab] logits each id was chosen from


def greedy_argmax(logits: np.ndarray) -> int:
    """argmax; ties go to the lowest id (np.argmax returns the first maximum)."""
    return int(np.argmax(logits))


def generate_greedy(model: Model, prompt, n_new: int) -> GreedyResult:
    """Prefill the prompt, then n_new greedy steps with a KV cache. Never stops early (EOS included)."""
    cache = KVCache(model.config.n_layers)
    prompt_logits = forward(model, prompt, cache)
    logits = prompt_logits[-1]
    ids, top1, top2, steps = [], [], [], []
    for step in range(n_new):
        nxt = greedy_argmax(logits)
        two = np.partition(logits, -2)[-2:]
        ids.append(nxt)
        top1.append(float(logits[nxt]))
        top2.append(float(min(two)))
        steps.append(logits)
        if step + 1 < n_new:
            logits = forward(model, [nxt], cache)[0]
    return GreedyResult(prompt_logits, ids, top1, top2, steps)


# ----------------------------------------------------------------------------------------------------
# Loading: GGUF
# ----------------------------------------------------------------------------------------------------


def unpermute_qk_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """GGUF (adjacent-pair) Q/K row order -> HF (rotate_half) row order. w: [n_heads*head_dim, in].

    Within a head, HF row r = s*(head_dim/2) + j (s in {0,1} picks the half, j the pair) is stored by
    the converter at GGUF row 2*j + s. So gguf rows viewed as [n_heads, head_dim/2, 2, in] (j, s) are
    regrouped to [n_heads, 2, head_dim/2, in] (s, j).
    """
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, hd // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def _gguf_scalar(reader, key: str):
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def load_gguf(path, dtype=np.float64, layout: str = "gguf") -> Model:
    """Load a llama-architecture GGUF, dequantizing every tensor with gguf-py.

    layout="gguf": Q/K rows as stored, adjacent-pair RoPE (what llama.cpp and frugal do).
    layout="hf":   Q/K rows un-permuted to HF order, rotate_half RoPE. Same model, other path.
    """
    import gguf  # llama.cpp's gguf-py; imported here so the llama2.c path needs nothing but NumPy

    if layout not in ("gguf", "hf"):
        raise ValueError(layout)
    reader = gguf.GGUFReader(str(path))
    arch = _gguf_scalar(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(f"unsupported architecture {arch!r}")
    tensors = {t.name: t for t in reader.tensors}

    def get(name: str) -> np.ndarray:
        t = tensors[name]
        # gguf-py returns the array outermost-first: a matrix [rows=out, cols=in], as HF stores it.
        a = gguf.quants.dequantize(t.data, t.tensor_type)
        return np.ascontiguousarray(a, dtype=dtype)

    n_tokens = len(reader.fields["tokenizer.ggml.tokens"].data)
    vocab = _gguf_scalar(reader, "llama.vocab_size") or n_tokens
    n_heads = int(_gguf_scalar(reader, "llama.attention.head_count"))
    n_kv = int(_gguf_scalar(reader, "llama.attention.head_count_kv") or n_heads)
    cfg = Config(
        dim=int(_gguf_scalar(reader, "llama.embedding_length")),
        hidden_dim=int(_gguf_scalar(reader, "llama.feed_forward_length")),
        n_layers=int(_gguf_scalar(reader, "llama.block_count")),
        n_heads=n_heads,
        n_kv_heads=n_kv,
        vocab_size=int(vocab),
        rope_base=float(_gguf_scalar(reader, "llama.rope.freq_base") or 10000.0),
        # The file stores eps as float32 (1e-5 -> 9.99999975e-06); use exactly that value.
        norm_eps=float(_gguf_scalar(reader, "llama.attention.layer_norm_rms_epsilon")),
        rope_pairing="adjacent" if layout == "gguf" else "half",
    )

    layers = []
    for i in range(cfg.n_layers):
        p = f"blk.{i}."
        wq, wk = get(p + "attn_q.weight"), get(p + "attn_k.weight")
        if layout == "hf":
            wq = unpermute_qk_rows(wq, cfg.n_heads)
            wk = unpermute_qk_rows(wk, cfg.n_kv_heads)
        layers.append(Layer(
            attn_norm=get(p + "attn_norm.weight"), wq=wq, wk=wk, wv=get(p + "attn_v.weight"),
            wo=get(p + "attn_output.weight"), ffn_norm=get(p + "ffn_norm.weight"),
            w_gate=get(p + "ffn_gate.weight"), w_up=get(p + "ffn_up.weight"),
            w_down=get(p + "ffn_down.weight")))
    emb = get("token_embd.weight")
    w_out = get("output.weight") if "output.weight" in tensors else emb
    model = Model(cfg, emb, layers, get("output_norm.weight"), w_out)
    _check_shapes(model)
    return model


# ----------------------------------------------------------------------------------------------------
# Loading: llama2.c checkpoint
# ----------------------------------------------------------------------------------------------------


def load_llama2c(path, dtype=np.float64) -> Model:
    """llama2.c legacy checkpoint: int32 header (dim, hidden, layers, heads, kv_heads, vocab, seq_len),
    then float32 arrays (see /work/shared/data/README.md). Negative vocab = separate classifier."""
    raw = pathlib.Path(path).read_bytes()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = np.frombuffer(raw, dtype="<i4", count=7)
    shared = vocab > 0
    vocab = abs(int(vocab))
    data = np.frombuffer(raw, dtype="<f4", offset=7 * 4)
    hd = dim // n_heads
    kv_dim = n_kv * hd
    pos = 0

    def take(*shape) -> np.ndarray:
        nonlocal pos
        n = int(np.prod(shape))
        if pos + n > data.size:
            raise ValueError("llama2.c checkpoint is truncated")
        a = data[pos:pos + n].reshape(shape).astype(dtype)
        pos += n
        return a

    emb = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, dim, dim)
    wk = take(n_layers, kv_dim, dim)
    wv = take(n_layers, kv_dim, dim)
    wo = take(n_layers, dim, dim)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    rms_final = take(dim)
    take(seq_len, hd // 2)  # legacy freq_cis_real (unused: RoPE is recomputed)
    take(seq_len, hd // 2)  # legacy freq_cis_imag
    w_out = emb if shared else take(vocab, dim)
    if pos != data.size:
        raise ValueError(f"llama2.c checkpoint has {data.size - pos} unexpected trailing floats")

    cfg = Config(dim=int(dim), hidden_dim=int(hidden), n_layers=int(n_layers), n_heads=int(n_heads),
                 n_kv_heads=int(n_kv), vocab_size=vocab, rope_base=10000.0, norm_eps=1e-5,
                 rope_pairing="adjacent")
    layers = [Layer(attn_norm=rms_att[i], wq=wq[i], wk=wk[i], wv=wv[i], wo=wo[i], ffn_norm=rms_ffn[i],
                    w_gate=w1[i], w_up=w3[i], w_down=w2[i]) for i in range(cfg.n_layers)]
    model = Model(cfg, emb, layers, rms_final, w_out)
    _check_shapes(model)
    return model


def _check_shapes(model: Model) -> None:
    c = model.config
    qd, kd = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
    assert c.n_heads % c.n_kv_heads == 0 and c.head_dim % 2 == 0
    assert model.tok_embd.shape == (c.vocab_size, c.dim)
    assert model.w_out.shape == (c.vocab_size, c.dim)
    assert model.out_norm.shape == (c.dim,)
    for l in model.layers:
        assert l.attn_norm.shape == (c.dim,) and l.ffn_norm.shape == (c.dim,)
        assert l.wq.shape == (qd, c.dim) and l.wk.shape == (kd, c.dim) and l.wv.shape == (kd, c.dim)
        assert l.wo.shape == (c.dim, qd)
        assert l.w_gate.shape == (c.hidden_dim, c.dim) and l.w_up.shape == (c.hidden_dim, c.dim)
        assert l.w_down.shape == (c.dim, c.hidden_dim)
