"""Writes a random-weight DeepSeek-V2-Lite-shaped checkpoint (config.json + safetensors in
Hugging Face layout, bf16 by default) with fewer decoder layers, for the whole-model benchmarks
and memory accounting. Never commit its output.

    python3 bench/make_random_model.py --out /tmp/v2lite-4 --layers 4

Layer 0 is the dense MLP (first_k_dense_replace 1), the others MoE (64 routed experts of width
1408, 6 per token, 2 shared). A 4-layer model is about 4.5 GB in bf16.
"""
import argparse
import json
import os
import struct

import numpy as np

V2_LITE = {
    "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
    "vocab_size": 102400, "hidden_size": 2048, "intermediate_size": 10944,
    "moe_intermediate_size": 1408, "num_hidden_layers": 27, "num_attention_heads": 16,
    "n_shared_experts": 2, "n_routed_experts": 64, "routed_scaling_factor": 1.0,
    "kv_lora_rank": 512, "q_lora_rank": None, "qk_rope_head_dim": 64, "v_head_dim": 128,
    "qk_nope_head_dim": 128, "topk_method": "greedy", "n_group": 1, "topk_group": 1,
    "num_experts_per_tok": 6, "moe_layer_freq": 1, "first_k_dense_replace": 1,
    "norm_topk_prob": False, "scoring_func": "softmax", "max_position_embeddings": 163840,
    "rms_norm_eps": 1e-06, "rope_theta": 10000, "tie_word_embeddings": False,
    "bos_token_id": 100000, "eos_token_id": 100001, "attention_bias": False,
    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                     "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096,
                     "type": "yarn"},
}


def shapes(cfg):
    d, h = cfg["hidden_size"], cfg["num_attention_heads"]
    qk = cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]
    r, m = cfg["kv_lora_rank"], cfg["moe_intermediate_size"]
    yield "model.embed_tokens.weight", (cfg["vocab_size"], d)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        yield p + "input_layernorm.weight", (d,)
        yield p + "post_attention_layernorm.weight", (d,)
        yield p + "self_attn.q_proj.weight", (h * qk, d)
        yield p + "self_attn.kv_a_proj_with_mqa.weight", (r + cfg["qk_rope_head_dim"], d)
        yield p + "self_attn.kv_a_layernorm.weight", (r,)
        yield p + "self_attn.kv_b_proj.weight", (h * (cfg["qk_nope_head_dim"] + cfg["v_head_dim"]), r)
        yield p + "self_attn.o_proj.weight", (d, h * cfg["v_head_dim"])
        if l < cfg["first_k_dense_replace"]:
            widths = [("mlp.", cfg["intermediate_size"])]
        else:
            yield p + "mlp.gate.weight", (cfg["n_routed_experts"], d)
            widths = [(f"mlp.experts.{e}.", m) for e in range(cfg["n_routed_experts"])]
            widths.append(("mlp.shared_experts.", cfg["n_shared_experts"] * m))
        for prefix, w in widths:
            yield p + prefix + "gate_proj.weight", (w, d)
            yield p + prefix + "up_proj.weight", (w, d)
            yield p + prefix + "down_proj.weight", (d, w)
    yield "model.norm.weight", (d,)
    yield "lm_head.weight", (cfg["vocab_size"], d)


def values(rng, shape):
    if len(shape) == 1:
        return rng.uniform(0.8, 1.2, size=shape).astype(np.float32)
    bound = np.float32(np.sqrt(3.0 / shape[1]) * (4.0 if shape[0] == 64 else 1.0))
    return (rng.random(size=shape, dtype=np.float32) * 2 - 1) * bound


def to_bf16(a):
    bits = a.view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = dict(V2_LITE, num_hidden_layers=args.layers)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    size = 2 if args.dtype == "bf16" else 4
    header, offset = {}, 0
    entries = list(shapes(cfg))
    for name, shape in entries:
        n = int(np.prod(shape)) * size
        header[name] = {"dtype": "BF16" if size == 2 else "F32", "shape": list(shape),
                        "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    rng = np.random.default_rng(args.seed)
    path = os.path.join(args.out, "model.safetensors")
    with open(path + ".tmp", "wb") as f:  # streamed: one tensor in memory at a time
        f.write(struct.pack("<Q", len(text)) + text)
        for name, shape in entries:
            v = values(rng, shape)
            f.write((to_bf16(v) if size == 2 else v).tobytes())
    os.replace(path + ".tmp", path)
    print(f"{path}: {len(entries)} tensors, {offset / 1e9:.2f} GB, {args.layers} layers")


if __name__ == "__main__":
    main()
