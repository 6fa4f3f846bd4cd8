"""Builds tiny quantized Hugging Face checkpoints (tests/golden/quant_ckpt/<name>/) byte by byte
from the published layouts, for tests/unit/quant_hf_load_test.cpp.

Model: LlamaForCausalLM, 2 layers, hidden 64, FFN 128, 4 query heads / 2 KV heads (head_dim 16),
vocab 32, tied embeddings. Every integer code, scale, zero and g_idx comes from a closed formula
(`codes`, `scale`, `zero`, `perm` below) that the C++ test repeats, so it can compare each loaded
weight with the value the format defines. Each checkpoint also gets expected.json: per linear, the
float64 sum of w[o, i] * (1 + (o * in + i) % 7) over the dequantized matrix, computed here with
each tool's own dequantization rule (an independent check of the C++ unpacking):

  gptq (AutoGPTQ v1, QuantLinear): qweight int32 [in*bits/32, out], bits packed along in (3-bit:
      32 values in 3 words, the published loop); qzeros int32 [G, out*bits/32] holding zero - 1;
      scales fp16 [G, out]; g_idx int32 [in]; w = scales[g_idx[i], o] * (q - (stored zero + 1)).
  awq (AutoAWQ WQLinear_GEMM): qweight int32 [in, out/8] with nibble order [0,2,4,6,1,3,5,7];
      qzeros int32 [G, out/8] same order, zeros as they are; w = scales[i // G, o] * (q - zero).
  compressed-tensors (llm-compressor): weight F8_E4M3 or I8 [out, in]; weight_scale F32 [out, 1];
      w = weight_scale[o] * weight[o, i] (E4M3 decoded per the OCP FP8 spec).

Checkpoints: gptq_4bit_g32_sym, gptq_4bit_g64_asym_actorder, gptq_3bit_g32_asym, awq_4bit_g64,
ct_fp8_channel, ct_int8_channel_w8a8.
Run: .venv/bin/python tests/reference/make_quant_checkpoints.py   (deterministic output)
"""
import json
import os
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..", "golden", "quant_ckpt")
DIM, FFN, LAYERS, HEADS, KV_HEADS, VOCAB = 64, 128, 2, 4, 2, 32
HD = DIM // HEADS
LINEARS = [  # (HF module suffix, out, in)
    ("self_attn.q_proj", DIM, DIM), ("self_attn.k_proj", KV_HEADS * HD, DIM),
    ("self_attn.v_proj", KV_HEADS * HD, DIM), ("self_attn.o_proj", DIM, DIM),
    ("mlp.gate_proj", FFN, DIM), ("mlp.up_proj", FFN, DIM), ("mlp.down_proj", DIM, FFN)]


# ---- the formulas (repeated in quant_hf_load_test.cpp) ----
def codes(L, k, out, inn, bits):
    o = np.arange(out)[:, None]
    i = np.arange(inn)[None, :]
    return ((o * 7 + i * 3 + (o * i) % 5 + L * 11 + k * 5) % (1 << bits)).astype(np.uint32)


def scale(L, k, out, groups):  # fp16-exact: (1..7) / 256
    o = np.arange(out)[:, None]
    g = np.arange(groups)[None, :]
    return ((1 + (o + 3 * g + k + L) % 7) / 256.0).astype(np.float32)


def zero(L, k, out, groups, bits, lo):  # values in [lo, 2^bits - 1]
    o = np.arange(out)[:, None]
    g = np.arange(groups)[None, :]
    n = (1 << bits) - lo
    return (lo + (o * 5 + g * 3 + k + L) % n).astype(np.uint32)


def perm(inn):  # act-order: column perm[j] is the j-th processed
    return (np.arange(inn) * 37 + 11) % inn


def weight_sum(w):
    out, inn = w.shape
    idx = np.arange(out * inn).reshape(out, inn)
    return float(np.sum(w.astype(np.float64) * (1 + idx % 7)))


# ---- packing, as the tools write it ----
def pack_rows(v, bits):
    """AutoGPTQ packing of v [n, cols] along axis 0 -> [n * bits // 32, cols]."""
    v = v.astype(np.uint32)
    out = np.zeros((v.shape[0] * bits // 32, v.shape[1]), dtype=np.uint32)
    if bits in (2, 4, 8):
        k = 32 // bits
        for row in range(out.shape[0]):
            for j in range(k):
                out[row] |= v[row * k + j] << (bits * j)
        return out
    assert bits == 3
    i = row = 0
    while row < out.shape[0]:
        for j in range(10):
            out[row] |= v[i + j] << (3 * j)
        i += 10
        out[row] |= (v[i] << 30) & 0xFFFFFFFF
        row += 1
        out[row] |= (v[i] >> 2) & 1
        i += 1
        for j in range(10):
            out[row] |= v[i + j] << (3 * j + 1)
        i += 10
        out[row] |= (v[i] << 31) & 0xFFFFFFFF
        row += 1
        out[row] |= (v[i] >> 1) & 3
        i += 1
        for j in range(10):
            out[row] |= v[i + j] << (3 * j + 2)
        i += 10
        row += 1
    return out


AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def pack_awq_cols(v):
    """AutoAWQ GEMM packing of v [rows, out] along axis 1 -> [rows, out // 8]."""
    out = np.zeros((v.shape[0], v.shape[1] // 8), dtype=np.uint32)
    for col in range(out.shape[1]):
        for k in range(8):
            out[:, col] |= v[:, col * 8 + AWQ_ORDER[k]].astype(np.uint32) << (4 * k)
    return out


def e4m3_to_float(c):
    c = int(c)
    s = -1.0 if c & 0x80 else 1.0
    e = (c >> 3) & 15
    m = c & 7
    assert not (e == 15 and m == 7), "NaN code"
    if e == 0:
        return s * (m / 8.0) * 2.0 ** -6
    return s * (1 + m / 8.0) * 2.0 ** (e - 7)


# ---- safetensors ----
def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (dtype, arr) in tensors.items():
        b = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def base_tensors():
    t = {}
    tok = np.arange(VOCAB)[:, None]
    d = np.arange(DIM)[None, :]
    t["model.embed_tokens.weight"] = ("F16", (((tok * 7 + d * 3) % 17 - 8) / 16.0).astype(np.float16))
    norm = (1 + (np.arange(DIM) % 5 - 2) / 16.0).astype(np.float16)
    for L in range(LAYERS):
        t[f"model.layers.{L}.input_layernorm.weight"] = ("F16", norm)
        t[f"model.layers.{L}.post_attention_layernorm.weight"] = ("F16", norm)
    t["model.norm.weight"] = ("F16", norm)
    return t


def config(qc):
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": DIM,
            "intermediate_size": FFN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
            "num_key_value_heads": KV_HEADS, "vocab_size": VOCAB, "max_position_embeddings": 128,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": True,
            "torch_dtype": "float16", "quantization_config": qc}


def gptq(name, bits, group, sym, act_order):
    t, expect = base_tensors(), {}
    for L in range(LAYERS):
        for k, (mod, out, inn) in enumerate(LINEARS):
            G = inn // group
            q = codes(L, k, out, inn, bits)
            s = scale(L, k, out, G)
            z = np.full((out, G), 1 << (bits - 1), np.uint32) if sym else zero(L, k, out, G, bits, 1)
            if act_order:
                g_idx = np.empty(inn, np.int32)
                g_idx[perm(inn)] = np.arange(inn) // group
            else:
                g_idx = (np.arange(inn) // group).astype(np.int32)
            p = f"model.layers.{L}.{mod}"
            t[p + ".qweight"] = ("I32", pack_rows(q.T.copy(), bits).astype(np.int32))
            t[p + ".qzeros"] = ("I32", pack_rows(((z.astype(np.int64) - 1) & ((1 << bits) - 1)).astype(np.uint32),
                                                 bits).T.copy().astype(np.int32))
            t[p + ".scales"] = ("F16", s.T.copy().astype(np.float16))
            t[p + ".g_idx"] = ("I32", g_idx)
            # AutoGPTQ's dequantization: zeros + 1 of what is stored, groups by g_idx.
            zs = ((z.astype(np.int64) - 1) & ((1 << bits) - 1)) + 1
            w = s[:, g_idx].astype(np.float64) * (q.astype(np.float64) - zs[:, g_idx])
            expect[p] = weight_sum(w)
    qc = {"quant_method": "gptq", "bits": bits, "group_size": group, "desc_act": act_order, "sym": sym,
          "static_groups": False, "true_sequential": True, "damp_percent": 0.01, "checkpoint_format": "gptq"}
    return t, qc, expect


def awq(name, group):
    t, expect = base_tensors(), {}
    for L in range(LAYERS):
        for k, (mod, out, inn) in enumerate(LINEARS):
            G = inn // group
            q = codes(L, k, out, inn, 4)
            s = scale(L, k, out, G)
            z = zero(L, k, out, G, 4, 0)
            p = f"model.layers.{L}.{mod}"
            t[p + ".qweight"] = ("I32", pack_awq_cols(q.T.copy()).astype(np.int32))
            t[p + ".qzeros"] = ("I32", pack_awq_cols(z.T.copy()).astype(np.int32))
            t[p + ".scales"] = ("F16", s.T.copy().astype(np.float16))
            gi = np.arange(inn) // group
            expect[p] = weight_sum(s[:, gi].astype(np.float64) * (q.astype(np.float64) - z[:, gi]))
    qc = {"quant_method": "awq", "bits": 4, "group_size": group, "zero_point": True, "version": "gemm",
          "modules_to_not_convert": None}
    return t, qc, expect


def ct(name, is_float):
    t, expect = base_tensors(), {}
    for L in range(LAYERS):
        for k, (mod, out, inn) in enumerate(LINEARS):
            o = np.arange(out)[:, None]
            i = np.arange(inn)[None, :]
            raw = ((o * 13 + i * 7 + L * 3 + k) % 256).astype(np.uint8)
            s = ((1 + np.arange(out) % 5) / 64.0).astype(np.float32)[:, None]
            p = f"model.layers.{L}.{mod}"
            if is_float:
                raw[(raw & 0x7F) == 0x7F] = 0x7E  # no NaN codes
                t[p + ".weight"] = ("F8_E4M3", raw)
                vals = np.vectorize(e4m3_to_float)(raw)
            else:
                raw[raw == 0x80] = 0x81  # int8 in [-127, 127]
                t[p + ".weight"] = ("I8", raw.view(np.int8))
                vals = raw.view(np.int8).astype(np.float64)
            t[p + ".weight_scale"] = ("F32", s)
            expect[p] = weight_sum(s.astype(np.float64) * vals)
    args = lambda typ, strategy, dyn: {"num_bits": 8, "type": typ, "symmetric": True, "group_size": None,
                                       "strategy": strategy, "block_structure": None, "dynamic": dyn,
                                       "actorder": None, "observer": None if dyn else "minmax",
                                       "observer_kwargs": {}}
    typ = "float" if is_float else "int"
    qc = {"quant_method": "compressed-tensors", "format": "float-quantized" if is_float else "int-quantized",
          "quantization_status": "compressed",
          "config_groups": {"group_0": {"targets": ["Linear"], "weights": args(typ, "channel", False),
                                        "input_activations": None if is_float else args("int", "token", True),
                                        "output_activations": None}},
          "ignore": ["lm_head"], "kv_cache_scheme": None}
    return t, qc, expect


def main():
    builds = {
        "gptq_4bit_g32_sym": lambda n: gptq(n, 4, 32, True, False),
        "gptq_4bit_g64_asym_actorder": lambda n: gptq(n, 4, 64, False, True),
        "gptq_3bit_g32_asym": lambda n: gptq(n, 3, 32, False, False),
        "awq_4bit_g64": lambda n: awq(n, 64),
        "ct_fp8_channel": lambda n: ct(n, True),
        "ct_int8_channel_w8a8": lambda n: ct(n, False),
    }
    for name, build in builds.items():
        tensors, qc, expect = build(name)
        d = os.path.join(ROOT, name)
        os.makedirs(d, exist_ok=True)
        write_safetensors(os.path.join(d, "model.safetensors"), dict(sorted(tensors.items())))
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config(qc), f, indent=1)
            f.write("\n")
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(dict(sorted(expect.items())), f, indent=1)
            f.write("\n")
        print(name, os.path.getsize(os.path.join(d, "model.safetensors")), "bytes")


if __name__ == "__main__":
    main()
