"""Builds the byte-exact fixtures of tests/unit/quant_pack_test.cpp from the published layouts.

AutoGPTQ v1 (QuantLinear.pack): intweight [in, out]; qweight[row] |= intweight[row*8 + j] << 4j;
zeros stored minus one and packed along out the same way. AutoAWQ GEMM (WQLinear_GEMM.from_linear):
intweight [in, out]; qweight[:, col] |= intweight[:, col*8 + order[k]] << 4k with
order = [0, 2, 4, 6, 1, 3, 5, 7]; zeros packed along out with the same order, not shifted.
AutoGPTQ 3-bit (the same QuantLinear.pack): every 32 values along the packed axis fill 3 words:
word 0 = v0..v9 at 3j, v10's low 2 bits at 30; word 1 = v10's bit 2 at 0, v11..v20 at 3j+1, v21's
low bit at 31; word 2 = v21's high 2 bits at 0, v22..v31 at 3j+2 (written as that loop in
make_quant_checkpoints.py pack_rows, not
as a bit stream, so the C++ bit-stream packer is checked against the published form).
Run: .venv/bin/python tests/reference/quant_pack_fixture.py  (prints C++ initializers)
"""
import numpy as np

from make_quant_checkpoints import pack_rows

IN, OUT, G = 16, 8, 8  # two groups along in
q = np.array([[(o * 7 + i * 3 + (o * i) % 5) % 16 for i in range(IN)] for o in range(OUT)], dtype=np.uint32)
zeros = np.array([[(o * 5 + g * 11 + 1) % 16 for g in range(IN // G)] for o in range(OUT)], dtype=np.uint32)

iw = q.T  # [in, out]
gptq_qweight = np.zeros((IN // 8, OUT), dtype=np.uint32)
for row in range(IN // 8):
    for j in range(8):
        gptq_qweight[row] |= iw[row * 8 + j] << (4 * j)
zt = ((zeros.T.astype(np.int64) - 1) & 15).astype(np.uint32)  # [groups, out], minus one
gptq_qzeros = np.zeros((IN // G, OUT // 8), dtype=np.uint32)
for col in range(OUT // 8):
    for j in range(8):
        gptq_qzeros[:, col] |= zt[:, col * 8 + j] << (4 * j)

order = [0, 2, 4, 6, 1, 3, 5, 7]
awq_qweight = np.zeros((IN, OUT // 8), dtype=np.uint32)
for col in range(OUT // 8):
    for k in range(8):
        awq_qweight[:, col] |= iw[:, col * 8 + order[k]] << (4 * k)
zz = zeros.T  # [groups, out]
awq_qzeros = np.zeros((IN // G, OUT // 8), dtype=np.uint32)
for col in range(OUT // 8):
    for k in range(8):
        awq_qzeros[:, col] |= zz[:, col * 8 + order[k]] << (4 * k)

def fmt(name, a):
    print(f"const uint32_t {name}[] = {{" + ", ".join(f"0x{v:08X}u" for v in a.flatten()) + "};")

fmt("kGptqQweight", gptq_qweight)
fmt("kGptqQzeros", gptq_qzeros)
fmt("kAwqQweight", awq_qweight)
fmt("kAwqQzeros", awq_qzeros)


def pack3_rows(v):
    """AutoGPTQ 3-bit packing of v [n, cols] (uint32) along axis 0 -> [n // 32 * 3, cols]."""
    return pack_rows(v, 3)  # the published loop, transcribed once in make_quant_checkpoints.py


IN3, OUT3, G3 = 64, 32, 32
q3 = np.array([[(o * 5 + i * 3 + (o * i) % 7) % 8 for i in range(IN3)] for o in range(OUT3)], dtype=np.uint32)
z3 = np.array([[(o * 3 + g * 5 + 1) % 8 for g in range(IN3 // G3)] for o in range(OUT3)], dtype=np.uint32)
gptq3_qweight = pack3_rows(q3.T.copy())                                     # [in/32*3, out]
gptq3_qzeros = pack3_rows(((z3.astype(np.int64) - 1) & 7).astype(np.uint32)).T  # [groups, out/32*3]
fmt("kGptq3Qweight", gptq3_qweight)
fmt("kGptq3Qzeros", gptq3_qzeros)
