#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Golden data for the xfmr encoder tests (tests/models/), from the reference implementations.

Python is used here only, never by the C++ tests or CI: the small files this script writes are
committed. To regenerate them (the versions used are in tests/golden/VERSIONS.txt):

    python3 -m venv /work/venv-ref
    /work/venv-ref/bin/pip install torch transformers safetensors sentence-transformers numpy
    /work/venv-ref/bin/python tests/golden/make_golden.py            # from the repository root

Torch comes from PyPI (HF transformers 5 needs a newer torch than Debian's 1.13); a CPU-only wheel
is enough (pip install torch --index-url https://download.pytorch.org/whl/cpu).

What it writes, one folder per model under tests/golden/:

    <model>/config.json         HF config (save_pretrained)
    <model>/model.safetensors   the weights, F32, in the naming form given below
    <model>/golden.safetensors  inputs and reference outputs (layout below)

Models: tiny (2 layers, hidden 64, 4 heads, FFN 128, vocab 512, 64 positions, 2 token types),
random-initialised with a fixed seed. HF initialises biases to 0 and LayerNorm gains to 1, which
would hide a mis-mapped bias or gain, so every parameter is redrawn: weights N(0, 0.15²) (enough
for peaked attention and both sides of the GELU), biases and LayerNorm offsets N(0, 0.1²), gains
1 + N(0, 0.1²), embedding tables N(0, 1).

    bert_gelu         BertModel, hidden_act "gelu" (erf), layer_norm_eps 1e-12; names without
                      prefix (what BertModel.save_pretrained writes; sentence-transformers form)
    bert_gelu_new     BertModel, "gelu_new" (tanh form), layer_norm_eps 1e-7; names renamed to the
                      "bert." prefix (BertFor*-task checkpoints), plus the pooler and
                      embeddings.position_ids (I64) that loaders must skip
    roformer          RoFormerModel, rotary_value false, eps 1e-12; "roformer." prefix; also the
                      UniLM run and the GlobalPointer / Efficient GlobalPointer heads
    roformer_rv_emb   RoFormerModel, rotary_value true, embedding_size 48 != hidden 64
                      (embeddings_project), "gelu_new", eps 1e-7; names without prefix

Inputs: batch of 4 sequences padded to n = 16, lengths 13, 7, 1, 16, random ids in [1, vocab),
padding id 0, token types mixed (0 then 1 from a random split point; 0 on padding).

golden.safetensors (every tensor F32; ids stored as F32, exact below 2^24):
    input_ids [B, n], token_type_ids [B, n], lengths [B]
    f32.hidden [B*n, H]    last_hidden_state, model.float()   (padded rows: whatever HF gives;
                           compare valid rows only)
    f32.mean [B, H]        masked mean pooling: sum_t h_t m_t / max(sum_t m_t, 1e-9)
    f32.mean_l2 [B, H]     the mean, L2-normalised (x / max(||x||, 1e-12), torch F.normalize)
    f32.cls [B, H]         h_0
    f64.<x>.hi, f64.<x>.lo the same outputs from model.double() as two F32 tensors,
                           value = double(hi) + double(lo) (hi = fp32(x), lo = fp32(x - hi):
                           about 48 significant bits, enough for a 1e-12 comparison)
  roformer only:
    segment_ids [B, n]     UniLM segments (0 source, 1 target; 0 on padding)
    unilm.f32.hidden, unilm.f64.hidden.{hi,lo}   the UniLM run: the 4-D additive mask passed to
                           HF allows key j for query i iff j < length and c_j <= c_i (c = cumsum
                           of segment_ids), bert4keras UniLM_Mask = xfmr AttentionMask
                           segment_ids + key padding
    gp.kernel [H, T*2d], gp.bias [T*2d]          GlobalPointer (bert4keras layout: Keras (in,
                           out) kernel; type a uses columns [a*2d, (a+1)*2d) = [q | k])
    egp.p_kernel [H, 2d], egp.p_bias [2d], egp.q_kernel [2d, 2T], egp.q_bias [2T]
    gp.f32.scores, egp.f32.scores [B*T*n, n]     row-major [B, T, n, n] logits on f32.hidden;
    gp.f64.scores.{hi,lo}, egp.f64.scores.{hi,lo} on f64.hidden (masked entries -inf, lo 0)
    T = 3 types, d = 8: formulas in SPEC §15.5 (bert4keras GlobalPointer /
    EfficientGlobalPointer, RoPE interleaved base 10000 positions 0..n-1, padded rows/columns
    and j < i masked with -inf).

Re-running reproduces every tensor bit for bit; only the order of the "__metadata__" keys in the
safetensors headers may change (the writer keeps them in a hash map).

The script also checks its own reference: each sequence run alone, unpadded, must give the rows
it has in the padded batch (within 1e-12 in float64), i.e. HF's masking is what the C++ tests
assume.

Double-precision note: HF's RoFormer builds its sinusoidal table with torch.FloatTensor, i.e.
rounded to float32 even in model.double(); the f64 run overwrites the table with the exact double
values (the same formula), so the f64 references are the model's mathematics in double, not
float32 rotation angles.
"""

import json
import os
import platform
import sys

import numpy as np
import torch
import transformers
import safetensors
from safetensors.torch import save_file, load_file

SEED = 20261130
HERE = os.path.dirname(os.path.abspath(__file__))
LENGTHS = [13, 7, 1, 16]
N = 16
GP_TYPES = 3
GP_HEAD = 8

COMMON = dict(
    vocab_size=512,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=64,
    type_vocab_size=2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    pad_token_id=0,
)


def versions():
    v = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }
    try:
        import sentence_transformers

        v["sentence-transformers"] = sentence_transformers.__version__
    except Exception:  # not needed by this script
        pass
    return v


def randomise(model, gen):
    """Redraw every parameter (see the module docstring)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias") or "LayerNorm.bias" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embeddings" in name and "project" not in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))


def make_inputs(gen, vocab):
    B = len(LENGTHS)
    ids = torch.zeros(B, N, dtype=torch.long)
    types = torch.zeros(B, N, dtype=torch.long)
    mask = torch.zeros(B, N, dtype=torch.long)
    for b, L in enumerate(LENGTHS):
        ids[b, :L] = torch.randint(1, vocab, (L,), generator=gen)
        split = int(torch.randint(1, L + 1, (1,), generator=gen))  # types: 0…0 1…1
        types[b, split:L] = 1
        mask[b, :L] = 1
    return ids, types, mask


def make_segments(gen):
    """UniLM segment ids: source (0) then target (1) from a random split; 0 on padding."""
    B = len(LENGTHS)
    seg = torch.zeros(B, N, dtype=torch.long)
    for b, L in enumerate(LENGTHS):
        split = int(torch.randint(0, L + 1, (1,), generator=gen))
        seg[b, split:L] = 1
    return seg


def exact_roformer_table(model, dtype):
    """HF's table formula in float64 (HF rounds it to float32 via torch.FloatTensor)."""
    emb = model.encoder.embed_positions
    n_pos, dim = emb.weight.shape
    pos = np.arange(n_pos, dtype=np.float64)[:, None]
    j = np.arange(dim)[None, :]
    enc = pos / np.power(10000.0, 2 * (j // 2) / dim)
    table = np.concatenate([np.sin(enc[:, 0::2]), np.cos(enc[:, 1::2])], axis=1)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(table).to(dtype))


def run(model, ids, types, mask, dtype, mask4=None):
    m = model.to(dtype)
    if hasattr(m, "encoder") and hasattr(m.encoder, "embed_positions"):
        exact_roformer_table(m, dtype)
    with torch.no_grad():
        if mask4 is None:
            out = m(input_ids=ids, token_type_ids=types, attention_mask=mask)
        else:
            out = m(input_ids=ids, token_type_ids=types, attention_mask=mask4.to(dtype))
    return out.last_hidden_state


def pooled(h, mask):
    m = mask.to(h.dtype).unsqueeze(-1)
    mean = (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
    return mean, torch.nn.functional.normalize(mean, p=2, dim=1), h[:, 0]


def split_f64(x):
    x = x.detach().to(torch.float64).contiguous()
    hi = x.to(torch.float32)
    lo = torch.where(torch.isfinite(hi), x - hi.to(torch.float64), torch.zeros_like(x))
    return hi.contiguous(), lo.to(torch.float32).contiguous()


def put(out, name, x, f64):
    if f64:
        hi, lo = split_f64(x)
        out[name + ".hi"] = hi
        out[name + ".lo"] = lo
    else:
        out[name] = x.detach().to(torch.float32).contiguous()


def rope_interleaved(x, dtype):
    """bert4keras apply_rotary_position_embeddings: x [B, n, ..., d], positions 0..n-1."""
    n, d = x.shape[1], x.shape[-1]
    pos = torch.arange(n, dtype=torch.float64)
    inv = torch.pow(torch.tensor(10000.0, dtype=torch.float64),
                    -2 * torch.arange(d // 2, dtype=torch.float64) / d)
    ang = pos[:, None] * inv[None, :]  # [n, d/2]
    cos = torch.repeat_interleave(torch.cos(ang), 2, dim=-1).to(dtype)
    sin = torch.repeat_interleave(torch.sin(ang), 2, dim=-1).to(dtype)
    shape = [1, n] + [1] * (x.dim() - 3) + [d]
    cos, sin = cos.reshape(shape), sin.reshape(shape)
    x2 = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).reshape(x.shape)
    return x * cos + x2 * sin


def gp_mask(logits, lengths):
    """Padded rows/columns and the strict lower triangle get -inf. logits [B, T, n, n]."""
    B, _, n, _ = logits.shape
    out = logits.clone()
    ninf = float("-inf")
    tril = torch.tril(torch.ones(n, n, dtype=torch.bool), diagonal=-1)
    for b, L in enumerate(lengths):
        out[b, :, L:, :] = ninf
        out[b, :, :, L:] = ninf
        out[b, :, tril] = ninf
    return out


def global_pointer(h, kernel, bias, lengths):
    """bert4keras GlobalPointer: h [B, n, H]; kernel (H, T*2d) Keras layout."""
    B, n, _ = h.shape
    z = h @ kernel + bias  # [B, n, T*2d]
    z = z.reshape(B, n, GP_TYPES, 2 * GP_HEAD)
    q, k = z[..., :GP_HEAD], z[..., GP_HEAD:]
    q, k = rope_interleaved(q, h.dtype), rope_interleaved(k, h.dtype)
    logits = torch.einsum("bmhd,bnhd->bhmn", q, k) / GP_HEAD ** 0.5
    return gp_mask(logits, lengths)


def efficient_global_pointer(h, p_kernel, p_bias, q_kernel, q_bias, lengths):
    """bert4keras EfficientGlobalPointer."""
    p = h @ p_kernel + p_bias  # [B, n, 2d]
    q, k = p[..., 0::2], p[..., 1::2]
    q, k = rope_interleaved(q, h.dtype), rope_interleaved(k, h.dtype)
    logits = torch.einsum("bmd,bnd->bmn", q, k) / GP_HEAD ** 0.5
    bias = torch.einsum("bnh->bhn", p @ q_kernel + q_bias) / 2  # [B, 2T, n]
    logits = logits[:, None] + bias[:, 0::2, None] + bias[:, 1::2, :, None]
    return gp_mask(logits, lengths)


def unilm_mask4(mask, seg, dtype):
    """(B, 1, n, n) additive mask: 0 where query i may see key j, finfo.min elsewhere."""
    c = torch.cumsum(seg, dim=1)
    allowed = (c[:, None, :] <= c[:, :, None]) & (mask[:, None, :] > 0)
    add = torch.zeros(allowed.shape, dtype=dtype)
    add[~allowed] = torch.finfo(dtype).min
    return add[:, None]


def save_model(model, folder, prefix, extra=None):
    os.makedirs(folder, exist_ok=True)
    model.config.save_pretrained(folder)
    sd = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()
          if not k.endswith("embed_positions.weight")}
    sd = {prefix + k: v for k, v in sd.items()}
    if extra:
        sd.update(extra)
    save_file(sd, os.path.join(folder, "model.safetensors"),
              metadata={"format": "pt", "generator": "tests/golden/make_golden.py"})
    return sorted(sd)


def make(name, cls, cfg_cls, cfg, prefix, gen, extra_weights=None, heads=False, unilm=False):
    config = cfg_cls(**COMMON, **cfg)
    config._attn_implementation = "eager"
    model = cls(config).eval()
    randomise(model, gen)
    folder = os.path.join(HERE, name)
    extra = None
    if extra_weights == "bert_extras":
        pos = torch.arange(config.max_position_embeddings, dtype=torch.long)[None]
        extra = {prefix + "embeddings.position_ids": pos}
    names = save_model(model, folder, prefix, extra)
    # Reload what was saved (F32) so the references use exactly the stored weights.
    state = load_file(os.path.join(folder, "model.safetensors"))
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    state = {k: v for k, v in state.items() if not k.endswith("position_ids")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert all(m.endswith("embed_positions.weight") for m in missing), missing

    ids, types, mask = make_inputs(gen, config.vocab_size)
    B = len(LENGTHS)
    out = {
        "input_ids": ids.to(torch.float32),
        "token_type_ids": types.to(torch.float32),
        "lengths": torch.tensor(LENGTHS, dtype=torch.float32),
    }
    hidden = {}
    for dtype, f64 in ((torch.float32, False), (torch.float64, True)):
        tag = "f64" if f64 else "f32"
        h = run(model, ids, types, mask, dtype)
        hidden[tag] = h
        if f64:  # the reference's own padding invariance: each sequence alone, unpadded
            for b, L in enumerate(LENGTHS):
                alone = run(model, ids[b:b + 1, :L], types[b:b + 1, :L], mask[b:b + 1, :L], dtype)
                err = (alone[0] - h[b, :L]).abs().max().item()
                assert err < 1e-12, (name, b, err)
        mean, mean_l2, cls_vec = pooled(h, mask)
        put(out, tag + ".hidden", h.reshape(B * N, -1), f64)
        put(out, tag + ".mean", mean, f64)
        put(out, tag + ".mean_l2", mean_l2, f64)
        put(out, tag + ".cls", cls_vec, f64)
    if unilm:
        seg = make_segments(gen)
        out["segment_ids"] = seg.to(torch.float32)
        for dtype, f64 in ((torch.float32, False), (torch.float64, True)):
            tag = "f64" if f64 else "f32"
            h = run(model, ids, types, mask, dtype, unilm_mask4(mask, seg, dtype))
            put(out, "unilm." + tag + ".hidden", h.reshape(B * N, -1), f64)
    if heads:
        H = config.hidden_size
        w = {
            "gp.kernel": 0.2 * torch.randn(H, GP_TYPES * 2 * GP_HEAD, generator=gen),
            "gp.bias": 0.1 * torch.randn(GP_TYPES * 2 * GP_HEAD, generator=gen),
            "egp.p_kernel": 0.2 * torch.randn(H, 2 * GP_HEAD, generator=gen),
            "egp.p_bias": 0.1 * torch.randn(2 * GP_HEAD, generator=gen),
            "egp.q_kernel": 0.3 * torch.randn(2 * GP_HEAD, 2 * GP_TYPES, generator=gen),
            "egp.q_bias": 0.1 * torch.randn(2 * GP_TYPES, generator=gen),
        }
        out.update(w)
        for tag, f64 in (("f32", False), ("f64", True)):
            h = hidden[tag]
            dt = h.dtype
            wt = {k: v.to(dt) for k, v in w.items()}
            gp = global_pointer(h, wt["gp.kernel"], wt["gp.bias"], LENGTHS)
            egp = efficient_global_pointer(h, wt["egp.p_kernel"], wt["egp.p_bias"],
                                           wt["egp.q_kernel"], wt["egp.q_bias"], LENGTHS)
            put(out, "gp." + tag + ".scores", gp.reshape(B * GP_TYPES * N, N), f64)
            put(out, "egp." + tag + ".scores", egp.reshape(B * GP_TYPES * N, N), f64)
    meta = {k: str(v) for k, v in versions().items()}
    meta.update({"seed": str(SEED), "model": name, "generator": "tests/golden/make_golden.py",
                 "weight_prefix": prefix})
    save_file(out, os.path.join(folder, "golden.safetensors"), metadata=meta)
    print(f"{name}: {len(names)} weights, prefix '{prefix}', "
          f"{os.path.getsize(os.path.join(folder, 'model.safetensors'))} + "
          f"{os.path.getsize(os.path.join(folder, 'golden.safetensors'))} bytes")


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    from transformers import BertConfig, BertModel, RoFormerConfig, RoFormerModel

    make("bert_gelu", BertModel, BertConfig,
         dict(hidden_act="gelu", layer_norm_eps=1e-12), "", gen)
    make("bert_gelu_new", BertModel, BertConfig,
         dict(hidden_act="gelu_new", layer_norm_eps=1e-7), "bert.", gen,
         extra_weights="bert_extras")
    make("roformer", RoFormerModel, RoFormerConfig,
         dict(hidden_act="gelu", layer_norm_eps=1e-12, rotary_value=False, embedding_size=64),
         "roformer.", gen, heads=True, unilm=True)
    make("roformer_rv_emb", RoFormerModel, RoFormerConfig,
         dict(hidden_act="gelu_new", layer_norm_eps=1e-7, rotary_value=True, embedding_size=48),
         "", gen)
    with open(os.path.join(HERE, "VERSIONS.txt"), "w") as f:
        f.write("# Packages used by tests/golden/make_golden.py for the committed golden files\n")
        for k, v in versions().items():
            f.write(f"{k} {v}\n")
        f.write(f"seed {SEED}\n")


if __name__ == "__main__":
    sys.exit(main())
