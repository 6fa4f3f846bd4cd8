#!/usr/bin/env python3
"""Dump the index of a GGUF file with llama.cpp's gguf-py, as an independent reference for
frugal's GGUF reader (tests/unit/formats_gguf_test.cpp).

Writes JSON: version, alignment, data_offset, tensor_count, kv_count, every metadata key in file
order (scalars and strings with their values; arrays with element type, length and first/last
elements) and every tensor (name, ggml type id and name, dims innermost-first, offset relative
to the data section, byte size, the sum of its bytes and its first 16 bytes in hex).

Usage: .venv/bin/python tests/reference/dump_gguf_index.py \
         models/SmolLM2-135M-Instruct.Q4_1.gguf tests/golden/smollm2_gguf_index.json
"""
import json
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType

TYPE_NAMES = {
    GGUFValueType.UINT8: "u8", GGUFValueType.INT8: "i8", GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16", GGUFValueType.UINT32: "u32", GGUFValueType.INT32: "i32",
    GGUFValueType.FLOAT32: "f32", GGUFValueType.BOOL: "bool", GGUFValueType.STRING: "string",
    GGUFValueType.ARRAY: "array", GGUFValueType.UINT64: "u64", GGUFValueType.INT64: "i64",
    GGUFValueType.FLOAT64: "f64",
}


def scalar(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)  # f32 widened exactly to double
    return v


def main():
    src, dst = sys.argv[1], sys.argv[2]
    r = GGUFReader(src)
    out = {"file": src.split("/")[-1], "alignment": int(r.alignment),
           "data_offset": int(r.data_offset), "metadata": [], "tensors": []}
    for key, f in r.fields.items():
        if key.startswith("GGUF."):
            if key == "GGUF.version":
                out["version"] = int(f.contents())
            continue
        entry = {"key": key, "type": TYPE_NAMES[f.types[0]]}
        if f.types[0] == GGUFValueType.ARRAY:
            if len(f.types) != 2:
                raise SystemExit(f"{key}: nested arrays are not handled by this script")
            entry["elem_type"] = TYPE_NAMES[f.types[1]]
            entry["length"] = len(f.data)
            if len(f.data):
                entry["first"] = scalar(f.contents(0))
                entry["last"] = scalar(f.contents(len(f.data) - 1))
        else:
            entry["value"] = scalar(f.contents())
        out["metadata"].append(entry)
    out["kv_count"] = len(out["metadata"])
    for t in r.tensors:
        raw = np.asarray(r.data[t.data_offset:t.data_offset + t.n_bytes])
        out["tensors"].append({
            "name": t.name,
            "ggml_type": int(t.tensor_type),
            "type_name": t.tensor_type.name,
            "dims": [int(d) for d in t.shape],
            "offset": int(t.data_offset - r.data_offset),
            "nbytes": int(t.n_bytes),
            "byte_sum": int(raw.astype(np.uint64).sum()),
            "head_hex": raw[:16].tobytes().hex(),
        })
    out["tensor_count"] = len(out["tensors"])
    with open(dst, "w") as fp:
        json.dump(out, fp, indent=1, ensure_ascii=False)
        fp.write("\n")


if __name__ == "__main__":
    main()
