"""Tiny whole-model DeepSeek checkpoints with random weights in Hugging Face layout, for the
model tests (and bench/make_random_model.py's small shapes). Each style mirrors a released family:

  v2lite: DeepseekV2ForCausalLM, softmax, greedy, no query compression, 2 shared experts
  v2:     DeepseekV2ForCausalLM, softmax, group_limited_greedy (4 groups, 2 kept), scale 16
  v3:     DeepseekV3ForCausalLM, sigmoid, noaux_tc with e_score_correction_bias, renormalised,
          scale 2.5, query compression, an MTP layer stored after the decoder layers
  v32:    DeepseekV32ForCausalLM: v3 plus the DSA indexer (index_topk above the lengths tested,
          so attention is dense and the official dense Transformer is the reference)
"""
import json
import os

import numpy as np

import safetensors_io

BASE = {
    "hidden_size": 32,
    "num_attention_heads": 2,
    "kv_lora_rank": 16,
    "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 4,
    "v_head_dim": 8,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "max_position_embeddings": 1024,
    "rope_scaling": {"type": "yarn", "factor": 40.0, "original_max_position_embeddings": 32,
                     "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 0.707, "mscale_all_dim": 0.707},
    "vocab_size": 64,
    "num_hidden_layers": 3,
    "intermediate_size": 48,
    "moe_intermediate_size": 16,
    "n_routed_experts": 8,
    "num_experts_per_tok": 3,
    "n_shared_experts": 2,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "eos_token_id": 1,
}

STYLES = {
    "v2lite": {"architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
               "q_lora_rank": None, "scoring_func": "softmax", "topk_method": "greedy",
               "n_group": 1, "topk_group": 1, "norm_topk_prob": False,
               "routed_scaling_factor": 1.0},
    "v2": {"architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
           "q_lora_rank": 12, "scoring_func": "softmax", "topk_method": "group_limited_greedy",
           "n_group": 4, "topk_group": 2, "norm_topk_prob": False, "routed_scaling_factor": 16.0},
    "v3": {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "kimi_k2",
           "q_lora_rank": 12, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
           "n_group": 4, "topk_group": 2, "norm_topk_prob": True, "routed_scaling_factor": 2.5,
           "n_shared_experts": 1, "num_nextn_predict_layers": 1, "moe_layer_freq": 1,
           "rope_scaling": dict(BASE["rope_scaling"], mscale=1.0, mscale_all_dim=1.0)},
    "v32": {"architectures": ["DeepseekV32ForCausalLM"], "model_type": "deepseek_v32",
            "q_lora_rank": 12, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
            "n_group": 4, "topk_group": 2, "norm_topk_prob": True, "routed_scaling_factor": 2.5,
            "n_shared_experts": 1, "index_n_heads": 2, "index_head_dim": 8, "index_topk": 64},
}


def config(style, **overrides):
    cfg = dict(BASE)
    cfg.update(STYLES[style])
    cfg.update(overrides)
    return cfg


def _is_moe(cfg, l):
    return (cfg.get("n_routed_experts") or 0) > 0 and l >= cfg["first_k_dense_replace"] and \
        l % cfg["moe_layer_freq"] == 0


def make_tensors(cfg, seed=0):
    """name -> float64 array for every tensor of the checkpoint (MTP layers included)."""
    rng = np.random.default_rng(seed)
    d, h = cfg["hidden_size"], cfg["num_attention_heads"]
    nope, rope, vd, r = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"]
    rq = cfg.get("q_lora_rank") or 0
    t = {}

    def mat(name, o, i, gain=1.0):
        b = gain * np.sqrt(3.0 / i)
        t[name] = rng.uniform(-b, b, size=(o, i))

    def vec(name, n, lo=0.8, hi=1.2):
        t[name] = rng.uniform(lo, hi, size=(n,))

    def swiglu(p, width):
        mat(p + "gate_proj.weight", width, d)
        mat(p + "up_proj.weight", width, d)
        mat(p + "down_proj.weight", d, width)

    mat("model.embed_tokens.weight", cfg["vocab_size"], d, gain=3.0)
    vec("model.norm.weight", d)
    if not cfg.get("tie_word_embeddings"):
        mat("lm_head.weight", cfg["vocab_size"], d)
    layers = cfg["num_hidden_layers"] + (cfg.get("num_nextn_predict_layers") or 0)
    for l in range(layers):
        p = f"model.layers.{l}."
        vec(p + "input_layernorm.weight", d)
        vec(p + "post_attention_layernorm.weight", d)
        a = p + "self_attn."
        if rq:
            mat(a + "q_a_proj.weight", rq, d)
            vec(a + "q_a_layernorm.weight", rq)
            mat(a + "q_b_proj.weight", h * (nope + rope), rq)
        else:
            mat(a + "q_proj.weight", h * (nope + rope), d)
        mat(a + "kv_a_proj_with_mqa.weight", r + rope, d)
        vec(a + "kv_a_layernorm.weight", r)
        mat(a + "kv_b_proj.weight", h * (nope + vd), r)
        mat(a + "o_proj.weight", d, h * vd)
        if "index_n_heads" in cfg:
            hi, di = cfg["index_n_heads"], cfg["index_head_dim"]
            mat(a + "indexer.wq_b.weight", hi * di, rq or d)
            mat(a + "indexer.wk.weight", di, d)
            vec(a + "indexer.k_norm.weight", di)
            vec(a + "indexer.k_norm.bias", di, -0.2, 0.2)
            mat(a + "indexer.weights_proj.weight", hi, d)
        m = p + "mlp."
        if l >= cfg["num_hidden_layers"]:  # an MTP layer: its own extra tensors, then a dense MLP
            vec(p + "enorm.weight", d)
            vec(p + "hnorm.weight", d)
            mat(p + "eh_proj.weight", d, 2 * d)
            vec(p + "shared_head.norm.weight", d)
            mat(p + "shared_head.head.weight", cfg["vocab_size"], d)
        if _is_moe(cfg, l):
            e, width = cfg["n_routed_experts"], cfg["moe_intermediate_size"]
            mat(m + "gate.weight", e, d, gain=4.0)  # spread the scores: no near-ties
            if cfg.get("topk_method") == "noaux_tc":
                t[m + "gate.e_score_correction_bias"] = rng.uniform(-0.1, 0.1, size=(e,))
            for i in range(e):
                swiglu(m + f"experts.{i}.", width)
            if cfg.get("n_shared_experts"):
                swiglu(m + "shared_experts.", cfg["n_shared_experts"] * width)
        else:
            swiglu(m, cfg["intermediate_size"])
    return t


def bf16_round(a):
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def fp8_e4m3_decode(codes):
    codes = codes.astype(np.int64)
    sign = np.where(codes & 0x80, -1.0, 1.0)
    exp, man = (codes >> 3) & 0xF, codes & 0x7
    normal = (1.0 + man / 8.0) * np.power(2.0, exp - 7)
    sub = (man / 8.0) * 2.0 ** -6
    return sign * np.where(exp == 0, sub, normal)


def to_fp8(t, name, rng):
    """Replaces a matrix by FP8 codes (exponents 4..8: values 2^-3..2^2) and 128x128 scales;
    returns (codes, scale_inv) and stores the dequantized weight back into t."""
    o, i = t[name].shape
    exp = rng.integers(4, 9, size=(o, i))
    codes = (rng.integers(0, 2, size=(o, i)) << 7) | (exp << 3) | rng.integers(0, 8, size=(o, i))
    codes = codes.astype(np.uint8)
    scale = rng.uniform(0.5, 1.5, size=((o + 127) // 128, (i + 127) // 128)) * np.sqrt(1.0 / i) / 2
    scale = scale.astype(np.float32).astype(np.float64)
    full = np.repeat(np.repeat(scale, 128, 0), 128, 1)[:o, :i]
    t[name] = fp8_e4m3_decode(codes) * full
    return codes, scale


def write(root, cfg, tensors, dtype="F32", shards=1, fp8=()):
    """Writes config.json and the checkpoint (optionally sharded with an index, optionally with
    the matrices named in fp8 as F8_E4M3 + weight_scale_inv). Returns the tensors as stored
    (rounded to bf16 when dtype is BF16; fp8 ones dequantized), for the reference."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    rng = np.random.default_rng(99)
    stored, values, dtypes = {}, {}, {}
    for name, value in tensors.items():
        if name in fp8:
            codes, scale = to_fp8(tensors, name, rng)
            values[name], dtypes[name] = codes, "F8_E4M3"
            values[name[: -len(".weight")] + ".weight_scale_inv"] = scale
            dtypes[name[: -len(".weight")] + ".weight_scale_inv"] = "F32"
            stored[name] = tensors[name]
            continue
        kind = "F32" if name.endswith("e_score_correction_bias") else dtype
        values[name], dtypes[name] = value, kind
        stored[name] = bf16_round(value) if kind == "BF16" else np.float32(value).astype(np.float64)
    names = list(values)
    if shards == 1:
        safetensors_io.write(os.path.join(root, "model.safetensors"), values, dtypes=dtypes)
        return stored
    weight_map = {}
    for s in range(shards):
        part = names[s::shards]
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        safetensors_io.write(os.path.join(root, file), {n: values[n] for n in part},
                             dtypes={n: dtypes[n] for n in part})
        weight_map.update({n: file for n in part})
    with open(os.path.join(root, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    return stored


def write_tokens(path, tokens, dtype="I32"):
    safetensors_io.write(path, {"tokens": np.asarray(tokens)}, dtype=dtype)
