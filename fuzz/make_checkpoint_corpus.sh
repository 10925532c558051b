#!/usr/bin/env bash
# Writes the seed corpus of fuzz_checkpoint: real `mla train` checkpoints of the smallest models
# that still cover every layout (MLA with and without query compression and RoPE, GQA, MHA with
# LayerNorm/GELU/untied head), so that mutations start from files the reader accepts.
# Usage: fuzz/make_checkpoint_corpus.sh [path to mla, default build/mla]
set -euo pipefail
cd "$(dirname "$0")/.."
mla=${1:-build/mla}
out=fuzz/corpus/checkpoint
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
# d_model 4 keeps each file at 20-35 KB (the 256-token embedding and the metadata dominate).
common=(--d-model 4 --layers 1 --seq 4 --batch 1 --steps 2 --eval-every 1 --eval-batches 1 --threads 1)
make_one() {
  local name=$1
  shift
  "$mla" train "${common[@]}" "$@" --checkpoint-dir "$work/$name" >/dev/null
  cp "$work/$name/step_00000002.safetensors" "$out/$name.safetensors"
}
make_one mla --attention mla --heads 2 --ffn-hidden 8
make_one mla_qlora_norope --attention mla --heads 1 --q-lora-rank 2 --rope-dim 0 --ffn-hidden 4
make_one gqa --attention gqa --heads 2 --kv-heads 1 --ffn-hidden 4
make_one mha_layernorm --attention mha --heads 2 --norm layernorm --ffn gelu --untied --ffn-hidden 4
ls -l "$out"
