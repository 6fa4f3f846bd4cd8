"""Write the whole-model golden files that frugal's C++ forward pass is tested against.

Run from the repository root:  .venv/bin/python tests/reference/make_model_goldens.py
Writes tests/golden/model_smollm2_135m_q4_1.json and tests/golden/stories260k_model.json
(schema in tests/reference/README.md) and prints the self-checks and float32-vs-float64 statistics.

Every number comes from llama_ref.py in float64 on the file's own (dequantized) weights. Self-checks run
before anything is written; any failure raises and leaves the old goldens in place:
  * GGUF row order + adjacent-pair RoPE == un-permuted HF row order + rotate_half RoPE (to 1e-9);
  * KV-cached generation == a full re-run over prompt + generated tokens (to 1e-9);
  * the tokenizer round-trips each prompt text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import llama_ref as ref  # noqa: E402

SCHEMA = "frugal.model_golden.v1"
N_GREEDY = 32
TOP_K = 5
# Every greedy step must win by at least this much (float64 logits), so that a correct float32 engine
# (whose logits differ from these by ~1e-5) cannot flip a step. A prompt that fails this is replaced.
MIN_GREEDY_MARGIN = 1e-2
SMOLLM_PATH = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
STORIES_PATH = pathlib.Path("/work/shared/data/stories260K.bin")
GOLDEN_DIR = ROOT / "tests" / "golden"

SMOLLM_PROMPTS = [
    ("capital", "The capital of France is"),
    ("chatml",
     "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
     "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"),
    # Written for this test in the style of WikiText raw text (spaced punctuation, @-@ / @,@ markers).
    ("wikitext_style",
     " = Harbour Bridge = \n\n The bridge opened on 19 March 1932 , after 8 years of work by about "
     "1 @,@ 400 men . Its main span is 503 m long ; the arch stands 134 m above the water .\n"),
]


# ----------------------------------------------------------------------------------------------------
# Tokenizer (HF `tokenizers`, built from the GGUF metadata; used only to make prompt ids and show text)
# ----------------------------------------------------------------------------------------------------


def gguf_bpe_tokenizer(gguf_path):
    """Byte-level BPE from a GGUF ("gpt2" model, "smollm" pre-tokenizer): digits split one by one, then
    the GPT-2 byte-level regex; token_type 3 (control) tokens are special added tokens."""
    import gguf
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    reader = gguf.GGUFReader(str(gguf_path))
    f = reader.fields
    assert f["tokenizer.ggml.model"].contents() == "gpt2"
    assert f["tokenizer.ggml.pre"].contents() == "smollm"
    tokens = f["tokenizer.ggml.tokens"].contents()
    types = f["tokenizer.ggml.token_type"].contents()
    merges = []
    for m in f["tokenizer.ggml.merges"].contents():
        a, b = m.split(" ")  # byte-level symbols never contain a raw space
        merges.append((a, b))
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(specials)
    for s in specials:
        assert tok.token_to_id(s.content) == vocab[s.content]
    return tok


# ----------------------------------------------------------------------------------------------------
# Golden records
# ----------------------------------------------------------------------------------------------------


def b64_f32(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def logsumexp(x: np.ndarray) -> np.ndarray:
    m = np.max(x, axis=-1, keepdims=True)
    return (m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True)))[..., 0]


def top_k(logits: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    """Largest k, descending; equal logits ordered by ascending id (stable sort of -logits)."""
    order = np.argsort(-logits, kind="stable")[:k]
    return [int(i) for i in order], [float(logits[i]) for i in order]


def rel_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """||a - b|| / ||b|| along the last axis (b is the float64 reference)."""
    return np.linalg.norm(a - b, axis=-1) / np.linalg.norm(b, axis=-1)


def make_case(name, prompt_text, prompt_ids, m64, m32, tokenizer, store_all_logits: bool) -> dict:
    t0 = time.time()
    g = ref.generate_greedy(m64, prompt_ids, N_GREEDY)
    logits = g.prompt_logits  # [T, vocab] float64

    # Self-check: the cached generation equals a plain full-sequence forward.
    full = ref.forward(m64, list(prompt_ids) + g.ids[:-1])
    err = max(np.abs(full[len(prompt_ids) - 1 + i] - g.step_logits[i]).max() for i in range(N_GREEDY))
    assert err < 1e-9, f"{name}: KV-cache vs full forward differ by {err}"

    positions = {"top5_ids": [], "top5_logits": [], "logsumexp": [float(v) for v in logsumexp(logits)]}
    for row in logits:
        ids, vals = top_k(row, TOP_K)
        positions["top5_ids"].append(ids)
        positions["top5_logits"].append(vals)

    # Float32 run of the same reference: a hint of how far an honest float32 engine drifts.
    g32 = ref.generate_greedy(m32, prompt_ids, N_GREEDY)
    prompt_err = rel_l2(g32.prompt_logits.astype(np.float64), logits)
    diverge = next((i for i, (a, b) in enumerate(zip(g32.ids, g.ids)) if a != b), None)
    n_same = N_GREEDY if diverge is None else diverge
    step_err = [float(rel_l2(g32.step_logits[i].astype(np.float64), g.step_logits[i])) for i in range(n_same)]

    margins = [a - b for a, b in zip(g.top1, g.top2)]
    assert min(margins) >= MIN_GREEDY_MARGIN, f"{name}: near-tie {min(margins)} at a greedy step"
    case = {
        "name": name,
        "prompt_text": prompt_text,
        "prompt_ids": [int(i) for i in prompt_ids],
        "last_logits": b64_f32(logits[-1]),
        "positions": positions,
        "greedy": {
            "ids": g.ids,
            "logit": g.top1,
            "second_logit": g.top2,
            "min_margin": float(min(margins)),
            "text": None if tokenizer is None else tokenizer.decode(g.ids, skip_special_tokens=False),
        },
        "f32_reference": {
            "max_rel_l2_prompt_positions": float(prompt_err.max()),
            "max_rel_l2_greedy_steps": float(max(step_err)) if step_err else None,
            "greedy_ids_match": diverge is None,
            "first_divergent_step": diverge,
        },
    }
    if store_all_logits:
        case["all_logits"] = b64_f32(logits)
    print(f"  {name}: {len(prompt_ids)} prompt tokens, {time.time() - t0:.1f}s, "
          f"min greedy margin {case['greedy']['min_margin']:.4g}, "
          f"f32 rel L2 prompt {prompt_err.max():.3g}, greedy steps "
          f"{case['f32_reference']['max_rel_l2_greedy_steps']:.3g}, f32 greedy same: {diverge is None}")
    if tokenizer is not None:
        print(f"    continuation: {case['greedy']['text']!r}")
    else:
        print(f"    continuation ids: {g.ids}")
    return case


def file_info(path: pathlib.Path, fmt: str) -> dict:
    data = path.read_bytes()
    # "file" is relative to the repository root, or to the shared data directory when "shared_data".
    shared = path.parent == STORIES_PATH.parent
    shown = path.name if shared else str(path.relative_to(ROOT))
    return {"file": shown, "shared_data": shared, "format": fmt, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def config_dict(cfg: ref.Config) -> dict:
    d = {k: getattr(cfg, k) for k in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads",
                                       "vocab_size", "rope_base", "norm_eps", "rope_pairing")}
    d["head_dim"] = cfg.head_dim
    return d


def golden_doc(model_info, cfg, cases, notes) -> dict:
    return {
        "schema": SCHEMA,
        "generator": "tests/reference/make_model_goldens.py",
        "reference": "tests/reference/llama_ref.py (NumPy float64, dequantized weights)",
        "model": model_info,
        "config": config_dict(cfg),
        "greedy_tokens": N_GREEDY,
        "top_k": TOP_K,
        "float_encoding": "base64 of little-endian IEEE float32",
        "notes": notes,
        "cases": cases,
    }


def write_json(path: pathlib.Path, doc: dict) -> None:
    text = json.dumps(doc, indent=1, ensure_ascii=True) + "\n"
    assert len(text) < 2_000_000, f"{path} would be {len(text)} bytes"
    path.write_text(text)
    print(f"wrote {path.relative_to(ROOT)} ({len(text)} bytes)")


# ----------------------------------------------------------------------------------------------------
# The two models
# ----------------------------------------------------------------------------------------------------


def smollm_golden() -> dict:
    print(f"SmolLM2: {SMOLLM_PATH}")
    tokenizer = gguf_bpe_tokenizer(SMOLLM_PATH)
    m64 = ref.load_gguf(SMOLLM_PATH, np.float64, layout="gguf")
    m32 = m64.astype(np.float32)

    prompts = []
    for name, text in SMOLLM_PROMPTS:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        assert tokenizer.decode(ids, skip_special_tokens=False) == text, name
        prompts.append((name, text, ids))

    # Permutation self-check: HF row order + rotate_half gives the same logits as GGUF order + adjacent.
    hf = ref.load_gguf(SMOLLM_PATH, np.float64, layout="hf")
    for name, _, ids in prompts:
        d = np.abs(ref.forward(hf, ids) - ref.forward(m64, ids)).max()
        print(f"  permutation check {name}: max |logit diff| = {d:.3g}")
        assert d < 1e-9, f"GGUF/HF layouts disagree on {name}: {d}"
    del hf

    cases = [make_case(name, text, ids, m64, m32, tokenizer, store_all_logits=False)
             for name, text, ids in prompts]
    notes = ("Prompt ids come from the GGUF tokenizer rebuilt with HF tokenizers (no BOS added: "
             "tokenizer.ggml.add_bos_token is false). Greedy generation never stops early: EOS and "
             "<|im_end|> are generated like any other token.")
    return golden_doc(file_info(SMOLLM_PATH, "gguf"), m64.config, cases, notes)


def stories_golden() -> dict:
    print(f"stories260K: {STORIES_PATH}")
    m64 = ref.load_llama2c(STORIES_PATH, np.float64)
    m32 = m64.astype(np.float32)
    rng = np.random.default_rng(20240601)
    prompts = [
        ("bos", [1]),
        ("bos_300_200_100", [1, 300, 200, 100]),
        ("random20", [int(i) for i in rng.integers(3, 512, size=20)]),
    ]
    cases = [make_case(name, None, ids, m64, m32, None, store_all_logits=True) for name, ids in prompts]
    notes = ("llama2.c checkpoint, used at token-id level (its tokenizer is not available). RoPE base "
             "10000 on adjacent pairs, RMSNorm eps 1e-5, classifier shared with the embedding. "
             "all_logits holds every prompt position: [prompt_len, vocab] row-major.")
    return golden_doc(file_info(STORIES_PATH, "llama2c"), m64.config, cases, notes)


def main() -> None:
    t0 = time.time()
    stories = stories_golden()
    smollm = smollm_golden()
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    write_json(GOLDEN_DIR / "stories260k_model.json", stories)
    write_json(GOLDEN_DIR / "model_smollm2_135m_q4_1.json", smollm)
    print(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
