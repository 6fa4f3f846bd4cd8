#!/usr/bin/env python3
"""PyTorch references for the CUDA benchmarks (issue 7), run on the GPU machine by gpu-check.

1. Prefill attention: torch.nn.functional.scaled_dot_product_attention, causal, bf16, GQA
   (32 query heads over 8 KV heads, head_dim 128: Llama-3.1-8B), one sequence of T tokens;
   TFLOP/s counting 4 * heads * head_dim * T(T+1)/2 (the causal half), the same count
   frugal_cuda_model_bench uses for its own prefill attention.
2. Decode: transformers LlamaForCausalLM with random weights in bf16 at the Llama-3.1-8B shape,
   greedy `generate` from a prompt of C tokens; decode time per token = (time for N new tokens -
   time for 1 new token) / (N - 1), so the prompt's prefill drops out. Batch 1.

Times: CUDA-synchronised wall clock, median of 3 after a warm-up. Prints a table last.
usage: python3 bench/cuda/torch_compare.py [--quick] [--sdpa-only]
"""
import statistics
import sys
import time

import torch


def timed(fn, reps=3):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def sdpa_rows(quick):
    rows = []
    H, KV, D = 32, 8, 128
    for T in ([512, 2048] if quick else [512, 1024, 2048, 4096, 8192]):
        q = torch.randn(1, H, T, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, KV, T, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, KV, T, D, device="cuda", dtype=torch.bfloat16)
        f = lambda: torch.nn.functional.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=True)
        s = timed(f, reps=5)
        flops = 4.0 * H * D * T * (T + 1) / 2
        print(f"torch sdpa causal T {T}: {s * 1e3:.3f} ms {flops / s / 1e12:.1f} TFLOP/s", flush=True)
        rows.append((f"torch sdpa prefill attn T {T} TFLOP/s", f"{flops / s / 1e12:.1f}"))
    return rows


def decode_rows(quick):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                      max_position_embeddings=8192, rope_theta=500000.0, tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    rows = []
    n_new = 16 if quick else 64
    for ctx in [1024] if quick else [1024, 4096]:
        ids = torch.randint(0, cfg.vocab_size, (1, ctx), device="cuda")

        def gen(n):
            with torch.no_grad():
                return model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                      pad_token_id=0)
        t1 = timed(lambda: gen(1))
        tn = timed(lambda: gen(n_new))
        per_tok = (tn - t1) / (n_new - 1)
        print(f"transformers LlamaForCausalLM bf16 (8B shape, random) ctx {ctx} batch 1: "
              f"{per_tok * 1e3:.2f} ms/token, {1 / per_tok:.1f} tok/s", flush=True)
        rows.append((f"transformers generate ctx {ctx} b1 tok/s", f"{1 / per_tok:.1f}"))
    return rows


def main():
    quick = "--quick" in sys.argv
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    rows = sdpa_rows(quick)
    if "--sdpa-only" in sys.argv:  # the prefill attention comparison alone (seconds, no 8B model)
        for what, val in rows:
            print(f"{what:<44} | {val}")
        return
    try:
        import transformers
        print(f"transformers {transformers.__version__}")
        rows += decode_rows(quick)
    except Exception as e:  # a reference only: report and keep the SDPA rows
        print(f"transformers decode skipped: {type(e).__name__}: {e}")
    print(f"\n{'measurement (PyTorch)':<44} | value")
    for what, val in rows:
        print(f"{what:<44} | {val}")


if __name__ == "__main__":
    main()
