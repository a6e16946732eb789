"""Independent reference for symbi's local embedder: a BERT sentence encoder in NumPy.

Shares no code with symbi (or with Hugging Face's tokenizers/candle): the safetensors
file is parsed by hand, the BERT basic + WordPiece tokenizer follows the original
`tokenization.py`, and the encoder follows the BERT paper / `modeling_bert.py`. Then mean
pooling and L2 normalisation, as `sentence-transformers` configures all-MiniLM-L6-v2.

usage: python3 minilm_reference.py MODEL_DIR < texts.json > vectors.json
"""

import json
import math
import struct
import sys
import unicodedata

import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"]).astype(np.float64)
    return out


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    # the CJK Unified Ideographs blocks, as BERT's tokenizer defines them
    return any(a <= cp <= b for a, b in [
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)])


def basic_tokens(text):
    # clean: drop NUL / U+FFFD / control characters, whitespace becomes a space
    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
            continue
        if is_cjk(cp):
            cleaned.append(" " + ch + " ")  # every ideograph is a word
        else:
            cleaned.append(" " if ch.isspace() else ch)
    text = "".join(cleaned).lower()
    # lowercasing models strip accents
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    tokens = []
    for word in text.split():
        cur = ""
        for ch in word:
            if is_punct(ch):
                if cur:
                    tokens.append(cur)
                tokens.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            tokens.append(cur)
    return tokens


def wordpiece(token, vocab):
    if len(token) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(token):
        end = len(token)
        found = None
        while start < end:
            sub = token[start:end] if start == 0 else "##" + token[start:end]
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


erf = np.vectorize(math.erf)


def encode(text, vocab, W, cfg, max_len):
    ids = [vocab["[CLS]"]]
    for t in basic_tokens(text):
        ids += [vocab[p] for p in wordpiece(t, vocab)]
    ids = ids[: max_len - 1] + [vocab["[SEP]"]]
    n = len(ids)
    eps = cfg["layer_norm_eps"]
    x = W["embeddings.word_embeddings.weight"][ids]
    x = x + W["embeddings.position_embeddings.weight"][:n] + W["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    heads = cfg["num_attention_heads"]
    d = cfg["hidden_size"] // heads

    def lin(v, name):
        return v @ W[name + ".weight"].T + W[name + ".bias"]

    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = lin(x, p + "attention.self.query").reshape(n, heads, d).transpose(1, 0, 2)
        k = lin(x, p + "attention.self.key").reshape(n, heads, d).transpose(1, 0, 2)
        v = lin(x, p + "attention.self.value").reshape(n, heads, d).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, heads * d)
        x = layer_norm(lin(ctx, p + "attention.output.dense") + x,
                       W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = layer_norm(lin(h, p + "output.dense") + x,
                       W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    v = x.mean(0)
    return (v / np.linalg.norm(v)).tolist()


def main():
    model = sys.argv[1]
    cfg = json.load(open(f"{model}/config.json"))
    max_len = json.load(open(f"{model}/sentence_bert_config.json"))["max_seq_length"]
    vocab = {}
    with open(f"{model}/vocab.txt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            vocab[line.rstrip("\n")] = i
    W = load_safetensors(f"{model}/model.safetensors")
    texts = json.load(sys.stdin)
    json.dump([encode(t, vocab, W, cfg, max_len) for t in texts], sys.stdout)


if __name__ == "__main__":
    main()
