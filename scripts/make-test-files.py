#!/usr/bin/env python3
"""Make the small GGUF fixture used by tests/unit/formats_gguf_test.cpp with llama.cpp's gguf-py,
so frugal's reader is checked against another implementation's writer (and frugal's writer is
checked to produce the same bytes for the same content).

Usage: .venv/bin/python scripts/make-test-files.py   (writes tests/data/gguf_py_every_type.gguf)
The expected values are repeated in the C++ test; change both together.
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q, GGUFValueType as T, GGUFWriter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    path = os.path.join(ROOT, "tests", "data", "gguf_py_every_type.gguf")
    w = GGUFWriter(path, arch="llama")  # writes general.architecture = "llama" first
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.1)
    w.add_bool("t.bool", True)
    w.add_string("t.string", "h\u00e9llo\nworld")
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**62))
    w.add_float64("t.f64", 3.141592653589793)
    w.add_key_value("t.arr.u8", [1, 2, 255], T.ARRAY, sub_type=T.UINT8)
    w.add_key_value("t.arr.i32", [-1, 0, 1], T.ARRAY, sub_type=T.INT32)
    w.add_key_value("t.arr.f32", [0.5, -1.25], T.ARRAY, sub_type=T.FLOAT32)
    w.add_key_value("t.arr.str", ["a", "", "\u00fc"], T.ARRAY, sub_type=T.STRING)
    w.add_key_value("t.arr.bool", [True, False], T.ARRAY, sub_type=T.BOOL)
    w.add_key_value("t.arr.nested_str", [["x", "y"], ["z"]], T.ARRAY)
    w.add_key_value("t.arr.nested_i32", [[1, 2], [3]], T.ARRAY)

    w.add_tensor("t.f32", np.arange(6, dtype=np.float32).reshape(2, 3) - 0.5)
    w.add_tensor("t.f16", np.array([1, -2, 0.5, 65504], dtype=np.float16))
    w.add_tensor("t.q8_0", (np.arange(68) % 256).astype(np.uint8).reshape(2, 34), raw_dtype=Q.Q8_0)
    w.add_tensor("t.bf16", (np.arange(24) * 7 % 256).astype(np.uint8).reshape(3, 8), raw_dtype=Q.BF16)
    w.add_tensor("t.i32", np.array([-1, 7, 2**31 - 1], dtype=np.int32))
    w.add_tensor("t.q4_1", (np.arange(20) * 13 % 256).astype(np.uint8).reshape(1, 20), raw_dtype=Q.Q4_1)
    w.add_tensor("t.i8", np.array([-128, 0, 127, 5], dtype=np.int8))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    sys.exit(main())
