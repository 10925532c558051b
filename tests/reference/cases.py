"""Test cases for the reference comparison: a model folder (config.json + safetensors with
random weights), an input x and the reference output, all written under a given directory."""
import json
import os

import numpy as np
import torch

import mla_reference
import safetensors_io

BASE = dict(hidden_size=64, num_attention_heads=4, q_lora_rank=32, kv_lora_rank=32, qk_nope_head_dim=16,
            qk_rope_head_dim=8, v_head_dim=16, rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=2048)
YARN = {"type": "yarn", "factor": 40.0, "original_max_position_embeddings": 32, "beta_fast": 32, "beta_slow": 1,
        "mscale": 0.707, "mscale_all_dim": 0.707}

# name -> (config overrides, batch, seq, layer, options)
CASES = {
    "q_lora": ({}, 1, 24, 0, {}),
    "no_q_lora": ({"q_lora_rank": None}, 1, 24, 0, {}),
    "dv_ne_dnope": ({"v_head_dim": 24, "qk_nope_head_dim": 12}, 2, 20, 1, {}),
    "odd_heads": ({"num_attention_heads": 5, "q_lora_rank": None}, 1, 19, 0, {}),
    "yarn": ({"rope_scaling": YARN, "qk_rope_head_dim": 16}, 1, 72, 2, {}),
    "yarn_v3_style": ({"rope_scaling": dict(YARN, mscale=1.0, mscale_all_dim=1.0, rope_type="yarn")}, 1, 48, 0, {}),
    "sharded": ({}, 2, 16, 3, {"sharded": True}),
    "bf16_weights": ({}, 1, 16, 0, {"weight_dtype": "BF16"}),
    "bf16_input": ({"q_lora_rank": None}, 3, 12, 0, {"input_dtype": "BF16"}),
    "batch4": ({}, 4, 9, 0, {}),
}


def bf16_round(a):
    """What a BF16 round trip does to float values (round to nearest even)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def make_weights(cfg, layer, rng):
    H, d = cfg.num_attention_heads, cfg.hidden_size
    Dn, Dr, Dv, R, Rq = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim, cfg.kv_lora_rank, cfg.q_lora_rank
    p = f"model.layers.{layer}.self_attn."

    def mat(o, i):
        return rng.uniform(-1, 1, size=(o, i)) * np.sqrt(3.0 / i)

    w = {}
    if Rq:
        w[p + "q_a_proj.weight"] = mat(Rq, d)
        w[p + "q_a_layernorm.weight"] = rng.uniform(0.8, 1.2, size=Rq)
        w[p + "q_b_proj.weight"] = mat(H * (Dn + Dr), Rq)
    else:
        w[p + "q_proj.weight"] = mat(H * (Dn + Dr), d)
    w[p + "kv_a_proj_with_mqa.weight"] = mat(R + Dr, d)
    w[p + "kv_a_layernorm.weight"] = rng.uniform(0.8, 1.2, size=R)
    w[p + "kv_b_proj.weight"] = mat(H * (Dn + Dv), R)
    w[p + "o_proj.weight"] = mat(d, H * Dv)
    return w


def write_case(name, root):
    """Writes case `name`: the model folder root/name/model and the input root/name/x.safetensors.
    Returns (model folder, layer, x, y_ref, seq)."""
    overrides, batch, seq, layer, opts = CASES[name]
    folder = os.path.join(root, name, "model")
    os.makedirs(folder, exist_ok=True)
    cfg_json = dict(BASE, **overrides)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg_json, f)
    cfg = mla_reference.Config.from_json(cfg_json)
    rng = np.random.default_rng(sum(map(ord, name)))  # str hash() is salted per process
    weights = make_weights(cfg, layer, rng)
    wdtype = opts.get("weight_dtype", "F32")
    if wdtype == "BF16":
        weights = {k: bf16_round(v) for k, v in weights.items()}
    # A tensor of another layer: loaders must pick by index.
    other = {f"model.layers.{layer + 1}.self_attn.o_proj.weight": np.zeros((3, 3))}
    if opts.get("sharded"):
        names = sorted(weights)
        half = len(names) // 2
        shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
        weight_map = {}
        for i, (fname, keys) in enumerate(shards.items()):
            tensors = {k: weights[k] for k in keys}
            if i == 0:
                tensors.update(other)
            safetensors_io.write(os.path.join(folder, fname), tensors, dtype=wdtype)
            weight_map.update({k: fname for k in tensors})
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    else:
        safetensors_io.write(os.path.join(folder, "model.safetensors"), dict(weights, **other), dtype=wdtype)
    x = rng.normal(size=(batch, seq, cfg.hidden_size))
    idtype = opts.get("input_dtype", "F32")
    if idtype == "BF16":
        x = bf16_round(x)
    else:
        x = x.astype(np.float32).astype(np.float64)
    safetensors_io.write(os.path.join(root, name, "x.safetensors"), {"x": x}, dtype=idtype)
    ref = mla_reference.Layer(cfg, weights, layer)
    y_ref = ref.naive(torch.tensor(x)).numpy()
    return folder, layer, x, y_ref, seq
