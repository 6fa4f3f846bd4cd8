# Synthetic decode of a Llama-3.1-8B-shaped model on the GPU: every matmul of the 32 layers and
# the LM head with real shapes, bf16, batch B, no attention/norms (weights-only roofline check).
import json, sys, time, torch
torch.manual_seed(0)
dev = "cuda"
h, kv, ffn, L, V = 4096, 1024, 14336, 32, 128256
shapes = [(h, h), (kv, h), (kv, h), (h, h), (ffn, h), (ffn, h), (h, ffn)]  # [out, in]
layers = [[torch.randn(o, i, device=dev, dtype=torch.bfloat16) * 0.01 for (o, i) in shapes] for _ in range(L)]
head = torch.randn(V, h, device=dev, dtype=torch.bfloat16) * 0.01
weight_bytes = sum(w.numel() * 2 for l in layers for w in l) + head.numel() * 2
res = {"gpu": torch.cuda.get_device_name(), "weight_bytes": weight_bytes, "rows": []}
def step(x):
    for q, k, v, o, g, u, d in layers:
        a = x @ q.T; _ = x @ k.T; _ = x @ v.T
        x = a @ o.T
        y = (x @ g.T) * (x @ u.T)
        x = y @ d.T
    return x @ head.T
for B in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]:
    x = torch.randn(B, h, device=dev, dtype=torch.bfloat16) * 0.01
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream(); s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2): step(x)
    torch.cuda.current_stream().wait_stream(s)
    with torch.cuda.graph(g): out = step(x)
    for _ in range(3): g.replay()
    torch.cuda.synchronize()
    n = 20; t0 = time.perf_counter()
    for _ in range(n): g.replay()
    torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) / n * 1e3
    res["rows"].append({"batch": B, "ms": ms})
    print(f"batch {B:5d}: {ms:8.3f} ms/step, {weight_bytes/ms/1e6:7.1f} GB/s effective", flush=True)
json.dump(res, open(sys.argv[1], "w"), indent=1)
