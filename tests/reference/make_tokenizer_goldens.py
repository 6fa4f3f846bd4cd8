#!/usr/bin/env python3
"""Golden files for frugal's tokenizer tests, made with Hugging Face `tokenizers` (independent of frugal).

Run from the repository root with the project venv:
    .venv/bin/python tests/reference/make_tokenizer_goldens.py

Writes under tests/golden/:
  smollm2_tokenizer.json          HF tokenizer.json rebuilt from the default model's GGUF metadata
                                  (input of Tokenizer::from_tokenizer_json in the tests)
  tokenizer_smollm2_cases.json    token ids of tricky strings (special tokens parsed and not parsed)
  tokenizer_smollm2_wikitext.json id count, FNV-1a 64 hash of the int32 LE id array, per-chunk hashes
                                  and the first 2000 ids of the whole WikiText-2 test file
  tokenizer_spm_cases.json        a small hand-built SentencePiece-style vocab (scores, byte fallback)
                                  and the ids/decodes HF's byte-fallback BPE gives for test strings
  tokenizer_spm.json              that reference tokenizer saved as a llama-style tokenizer.json
  tokenizer_pretokenizer_cases.json  pieces HF's Split(Regex, "isolated") / Digits give for the tricky
                                  strings with the GPT-2, Llama 3 and digit patterns
  tokenizer_tiny_llama3.json      a small byte-level BPE trained here, Llama 3 style (Split with the
                                  Llama 3 regex, ByteLevel without regex, ignore_merges, BOS template),
                                  merges written in the "a b" string form
  tokenizer_tiny_llama3_cases.json  its ids for test strings

The byte-level BPE configuration is SmolLM2's published one: pre-tokenizer
Sequence([Digits(individual_digits=True), ByteLevel(add_prefix_space=False, use_regex=True)]),
ByteLevel decoder, control (3) / user-defined (4) GGUF tokens added as special tokens.
"""
import json
import os
import sys

from gguf import GGUFReader
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOLDEN = os.path.join(ROOT, "tests", "golden")
MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
WIKITEXT = os.path.join(ROOT, "..", "shared", "data", "wikitext-2-raw-test.txt")
CHUNK = 4096  # ids per chunk hash

# Strings chosen to hit pre-tokenizer and merge corner cases.
TRICKY = [
    "",
    " ",
    "  ",
    "Hello world",
    " Hello world",
    "Hello world ",
    "Hello   world",
    "   leading and trailing   ",
    "tab\there\t\tdouble",
    "line\nbreak",
    "windows\r\nline",
    "para\n\n\ngraph",
    "\n",
    " \n \n",
    "12345",
    "3.14159",
    "1,000,000",
    "in 2024 we had 42 cats",
    "héllo wörld",
    "日本語のテキスト",
    "🙂👍🏽",
    "e\u0301 a\u0308 combining",
    "don't we'll I'M they've she'd it's",
    "DON'T 'S 'quoted'",
    "def f(x):\n    return x**2\n",
    "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M?x=1&y=2#frag",
    "<|im_start|>user\nhi<|im_end|>",
    "text<|im_end|>glued<|im_start|>assistant",
    "<|endoftext|><|endoftext|>",
    "<|im_start|",
    "< |im_start|>",
    "Русский текст и English mixed with العربية and ελληνικά",
    "a" * 200,
    "!!!???...,,,;;;",
    "$100 & 50% off — “quotes” ‘single’ …",
    "\u00a0nbsp\u2009thin\u3000ideographic",
    "x\u200bzero width",
    "CamelCaseIdentifier snake_case_identifier",
    "    indented four\n\tindented tab",
    "the quick brown fox jumps over the lazy dog " * 3,
]


def gguf_field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def build_smollm2_tokenizer():
    r = GGUFReader(MODEL)
    tokens = gguf_field(r, "tokenizer.ggml.tokens")
    types = gguf_field(r, "tokenizer.ggml.token_type")
    merges = gguf_field(r, "tokenizer.ggml.merges")
    assert gguf_field(r, "tokenizer.ggml.model") == "gpt2"
    assert gguf_field(r, "tokenizer.ggml.pre") == "smollm"
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    special = [AddedToken(tokens[i], special=True, normalized=False)
               for i in range(len(tokens)) if types[i] in (3, 4)]
    tok.add_special_tokens(special)
    return tok


def encode(tok, text, parse_special):
    tok.encode_special_tokens = not parse_special
    return tok.encode(text, add_special_tokens=False).ids


def fnv1a64_int32(ids):
    h = 0xcbf29ce484222325
    for x in ids:
        for b in int(x).to_bytes(4, "little", signed=True):
            h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def write_json(name, obj):
    path = os.path.join(GOLDEN, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def smollm2_goldens():
    tok = build_smollm2_tokenizer()
    tj = os.path.join(GOLDEN, "smollm2_tokenizer.json")
    tok.save(tj, pretty=False)
    size = os.path.getsize(tj)
    print(f"wrote {tj} ({size} bytes)")
    if size > 3 * 1024 * 1024:
        sys.exit("tokenizer.json is over 3 MB: do not commit it")

    cases = []
    for text in TRICKY:
        ids = encode(tok, text, True)
        ids_plain = encode(tok, text, False)
        assert tok.decode(ids_plain, skip_special_tokens=False) == text
        cases.append({"text": text, "ids": ids, "ids_no_special": ids_plain})
    write_json("tokenizer_smollm2_cases.json",
               {"source": "HF tokenizers %s, BPE from %s" % (
                   __import__("tokenizers").__version__, os.path.basename(MODEL)),
                "cases": cases})

    with open(WIKITEXT, "rb") as f:
        text = f.read().decode("utf-8")
    ids = encode(tok, text, False)
    assert tok.decode(ids) == text
    chunks = [fnv1a64_int32(ids[i:i + CHUNK]) for i in range(0, len(ids), CHUNK)]
    write_json("tokenizer_smollm2_wikitext.json", {
        "file": "wikitext-2-raw-test.txt",
        "count": len(ids),
        "fnv1a64": "%016x" % fnv1a64_int32(ids),
        "chunk": CHUNK,
        "chunk_fnv1a64": ["%016x" % c for c in chunks],
        "first_ids": ids[:2000],
    })


# ---------------------------------------------------------------- SentencePiece-style BPE
# A tiny llama-style vocab: <unk>, <s>, </s>, 256 byte tokens, then pieces with scores
# (higher score merges first). Deliberately missing some characters (e.g. "本", "z") so byte
# fallback is exercised.
SPM_PIECES = [
    # (piece, score)
    ("▁", -1.0), ("e", -2.0), ("h", -3.0), ("l", -4.0), ("o", -5.0), ("w", -6.0), ("r", -7.0),
    ("d", -8.0), ("t", -9.0), ("a", -10.0), ("n", -11.0), ("i", -12.0), ("s", -13.0),
    ("g", -14.0), ("c", -15.0), ("é", -16.0), ("日", -17.0), (",", -18.0), ("!", -19.0),
    ("T", -20.0), ("H", -21.0), ("1", -22.0), ("2", -23.0),
    ("▁t", -30.0), ("he", -31.0), ("▁the", -32.0), ("in", -33.0), ("ll", -34.0),
    ("▁h", -35.0), ("▁w", -36.0), ("or", -37.0), ("ing", -38.0), ("▁a", -39.0),
    ("lo", -40.0), ("llo", -41.0), ("ello", -42.0), ("▁hello", -43.0), ("ld", -44.0),
    ("▁wor", -45.0), ("▁world", -46.0), ("an", -47.0), ("▁an", -48.0), ("▁and", -49.0),
    ("th", -50.0), ("is", -51.0), ("▁is", -52.0), ("▁▁", -53.0), ("▁▁▁▁", -54.0),
    ("er", -55.0), ("▁th", -56.0), ("at", -57.0), ("▁that", -58.0), ("es", -59.0),
    ("▁T", -60.0), ("▁The", -61.0), ("ré", -63.0), ("▁ca", -64.0), ("fé", -65.0),
]

SPM_TEXTS = [
    "hello world",
    "Hello world",
    "the cat is that",
    "The end",
    "  two leading spaces",
    "trailing  ",
    "café résumé",
    "日本",
    "zebra",
    "hello, world!",
    "12 21",
    "a\nb\tc",
    "",
    " ",
    "<s>hello</s> world",
    "hello<s>world",
    "<s> leading special",
    "▁literal▁marks",
    "ünïcödé 🙂",
]


def spm_vocab():
    tokens, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        tokens.append("<0x%02X>" % b)
        scores.append(0.0)
        types.append(6)
    seen = set(tokens)
    for piece, score in SPM_PIECES:
        assert piece not in seen, piece
        seen.add(piece)
        tokens.append(piece)
        scores.append(score)
        types.append(1)
    return tokens, scores, types


def spm_reference(tokens, scores, types):
    """HF byte-fallback BPE with merges ordered by the merged piece's score (SentencePiece BPE)."""
    vocab = {t: i for i, t in enumerate(tokens)}
    normal = {t: s for t, s, ty in zip(tokens, scores, types) if ty == 1}
    merges = []
    for piece, score in normal.items():
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in normal and right in normal:
                merges.append((score, vocab[left], vocab[right], left, right))
    merges.sort(key=lambda m: (-m[0], m[1], m[2]))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(m[3], m[4]) for m in merges],
                               unk_token="<unk>", byte_fallback=True, fuse_unk=False))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty in (2, 3)])
    return tok


def spm_goldens():
    tokens, scores, types = spm_vocab()
    tok = spm_reference(tokens, scores, types)
    tok.save(os.path.join(GOLDEN, "tokenizer_spm.json"), pretty=True)
    cases = []
    for text in SPM_TEXTS:
        ids = encode(tok, text, True)
        ids_plain = encode(tok, text, False)
        cases.append({"text": text, "ids": ids, "ids_no_special": ids_plain,
                      "decoded": tok.decode(ids_plain, skip_special_tokens=True),
                      "decoded_special": tok.decode(ids, skip_special_tokens=False)})
    write_json("tokenizer_spm_cases.json", {
        "source": "HF tokenizers %s BPE(byte_fallback) with score-ordered merges, Prepend+Replace "
                  "normalizer" % __import__("tokenizers").__version__,
        "tokens": tokens, "scores": scores, "token_types": types,
        "bos": 1, "eos": 2, "unk": 0, "cases": cases})


# ---------------------------------------------------------------- pre-tokenizer patterns
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def pretokenizer_goldens():
    from tokenizers import Regex
    splitters = {
        "gpt2": pre_tokenizers.Split(Regex(GPT2_PATTERN), behavior="isolated"),
        "llama3": pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        "digits": pre_tokenizers.Digits(individual_digits=True),
    }
    out = {"patterns": {"gpt2": GPT2_PATTERN, "llama3": LLAMA3_PATTERN}, "cases": []}
    for text in TRICKY:
        case = {"text": text}
        for name, sp in splitters.items():
            case[name] = [p for p, _ in sp.pre_tokenize_str(text)]
        out["cases"].append(case)
    write_json("tokenizer_pretokenizer_cases.json", out)


TINY_CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away!",
    "In 2024, 1234567 people said: don't stop, we'll see. I'M HERE, YOU'RE THERE.",
    "def tokenize(text):\n    return [t for t in text.split()]\n\n\n",
    "Tokenizers split text into pieces, then merge bytes into tokens by rank.",
    "naïve café, 日本語, 🙂 emoji and ünïcödé\r\nwindows line",
]
TINY_TEXTS = [
    "The quick brown fox",
    "the lazy dog sleeps",
    "I'M HERE and don't STOP'S",
    "numbers 1234567 and 12",
    "def f(x):\n    return x\n\n",
    "café 日本語 🙂",
    "<|begin_of_text|>hi<|eot_id|>",
    "   spaces   \t\r\n",
    "tokenizer tokenizers tokens",
    "",
]


def tiny_llama3_goldens():
    from tokenizers import Regex, processors, trainers
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|begin_of_text|>", "<|eot_id|>"])
    tok.train_from_iterator(TINY_CORPUS * 3, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)])
    path = os.path.join(GOLDEN, "tokenizer_tiny_llama3.json")
    j = json.loads(tok.to_str())
    j["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=1)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    tok = Tokenizer.from_file(path)  # the goldens come from the committed file itself
    cases = []
    for text in TINY_TEXTS:
        tok.encode_special_tokens = False
        with_bos = tok.encode(text, add_special_tokens=True).ids
        cases.append({"text": text, "ids": with_bos, "ids_no_special": encode(tok, text, False)})
    write_json("tokenizer_tiny_llama3_cases.json", {"cases": cases})


if __name__ == "__main__":
    os.makedirs(GOLDEN, exist_ok=True)
    smollm2_goldens()
    spm_goldens()
    pretokenizer_goldens()
    tiny_llama3_goldens()
