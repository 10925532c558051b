// MlaLayer: one DeepSeek Multi-head Latent Attention layer on the CPU, naive and absorbed.
//
//   x (B, S, d) --q path-->  q (B*S, H, Dn+Dr)  [q_a -> RMSNorm -> q_b, or q_proj]; RoPE on Dr
//               --kv_a-->    c_kv (B*S, R) after RMSNorm, k_pe (B*S, Dr) after RoPE
//   naive:    K_h = [W_UK_h c_kv ; k_pe], V_h = W_UV_h c_kv, multi-head attention, o_proj
//   absorbed: q~_h = W_UK_h^T q_nope_h, attention over the latent rows [c_kv ; k_pe]
//             (value = c_kv), o_h = W_UV_h o~_h, o_proj
//
// A layer owns a workspace that grows to the largest batch x tokens it has seen and is then
// reused, so decoding one token at a time allocates nothing. Not safe to call one layer from
// several threads at once; the computation itself is parallel (OpenMP).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mla/config.h"
#include "mla/dsa.h"
#include "mla/kv_cache.h"
#include "mla/paged_cache.h"
#include "mla/sparse.h"
#include "mla/weights.h"

namespace mla {
namespace detail {
struct Workspace;
struct SeqSlice;
struct Bf16Projections;
}  // namespace detail

enum class AttentionPath { kNaive, kAbsorbed };

class MlaLayer {
 public:
  // Validates the config and the weight shapes (throws mla::Error naming the tensor).
  // weight_dtype BF16 stores the projection matrices (q_proj or q_a/q_b, kv_a, o_proj) as bf16
  // and multiplies them with float32 accumulation: half the bytes a decode step streams. Their
  // float32 copies are then released (weights() keeps kv_b, which the absorbed path slices per
  // head, and the norms). F32 (the default) keeps everything float32.
  MlaLayer(const MlaConfig& config, MlaWeights weights, DType weight_dtype = DType::kF32);
  // A float32 layer computing with weights it does not own (a trained model's parameter buffer:
  // no copy). They must outlive the layer; writes to them take effect at the next call. Every
  // tensor the config uses must be set (throws naming the first that is not).
  MlaLayer(const MlaConfig& config, const MlaWeightView& borrowed);
  ~MlaLayer();
  MlaLayer(MlaLayer&&) noexcept;
  MlaLayer& operator=(MlaLayer&&) noexcept;

  const MlaConfig& config() const { return config_; }
  // The weights the layer owns (empty for a borrowing layer: see weight_view()).
  const MlaWeights& weights() const { return weights_; }
  // What the layer computes with: its own float32 weights or the borrowed ones (null where a
  // BF16 layer keeps only the bf16 copy).
  const MlaWeightView& weight_view() const { return view_; }
  // The float32 weights the layer computes with, for writing in place (the Python module's
  // weight arrays view them); a write takes effect at the next call. Shapes must not change.
  // Throws for a BF16 layer, whose projections are separate bf16 copies, and for a borrowing one.
  MlaWeights& mutable_weights();
  DType weight_dtype() const { return weight_dtype_; }

  // Sparse attention for every later forward and prefill, on both paths (docs/sparse.md);
  // dense by default. Validates the spec against the heads. DSA (SparseKind::kDsa) needs the
  // lightning indexer's key pool and is served by the paged forward that takes it.
  void set_sparse(const SparseSpec& spec);
  const SparseSpec& sparse() const { return sparse_; }
  // The lightning indexer DSA selects with; its top_k is the spec's (SparseKind::kDsa).
  void set_indexer(DsaIndexer indexer);
  const DsaIndexer* indexer() const { return indexer_.get(); }

  // Appends `seq` new tokens to each of the `batch` sequences in the cache and computes their
  // outputs; the new tokens attend causally to everything cached before them and to each other.
  // x and y are (batch, seq, hidden). Throws on a size mismatch or when the cache is too small,
  // before anything is written.
  void forward(std::span<const float> x, int64_t batch, int64_t seq, LatentCache& cache,
               std::span<float> y);  // absorbed path
  void forward(std::span<const float> x, int64_t batch, int64_t seq, NaiveKvCache& cache,
               std::span<float> y);  // naive path

  // Batched, variable-length step over a paged pool: sequence seqs[i] gets new_tokens[i] >= 1
  // new tokens (decode, multi-token decode or a prefill chunk), causal among themselves and
  // attending to everything it has cached. x and y are packed (sum of new_tokens, hidden), in
  // the order of seqs. The pool's rows must be paged_token_width(path) wide, F32 or BF16 (rows
  // are rounded to bf16 when stored; attention accumulates in float32), or on the dense
  // absorbed path F8_E4M3 / I8 with rope_width Dr (mla/quantized_row.h). Pages are
  // reserved for all sequences first: when the pool is full nothing is written.
  void forward(std::span<const float> x, std::span<const PagedKvPool::SeqId> seqs,
               std::span<const int64_t> new_tokens, PagedKvPool& pool, AttentionPath path,
               std::span<float> y);
  // The same with DSA: index_pool holds the indexer's key of every token (rows of
  // indexer()->key_width() numbers), one sequence per id of `pool`, each as long as in `pool`.
  void forward(std::span<const float> x, std::span<const PagedKvPool::SeqId> seqs,
               std::span<const int64_t> new_tokens, PagedKvPool& pool, AttentionPath path,
               std::span<float> y, PagedKvPool& index_pool);
  // Numbers per token in a page pool for `path`: R + Dr (absorbed) or H (Dn + Dr + Dv) (naive).
  int64_t paged_token_width(AttentionPath path) const;

  // Causal prefill with no cache kept: positions start_position .. start_position + seq - 1.
  // y is (batch, seq, config.out_size()).
  void prefill(std::span<const float> x, int64_t batch, int64_t seq, std::span<float> y,
               AttentionPath path, int64_t start_position = 0);

  // The causal attention probabilities of a prefill of x (batch, seq, hidden) from
  // start_position: (batch, H, seq, seq), row i of a head sums to 1 over keys 0..i and is zero
  // after i (what need_weights returns in PyTorch, per head). Computed from the absorbed
  // scores; dropout is not applied (inference).
  std::vector<float> attention_weights(std::span<const float> x, int64_t batch, int64_t seq,
                                       int64_t start_position = 0);

 private:
  void forward_paged(std::span<const float> x, std::span<const PagedKvPool::SeqId> seqs,
                     std::span<const int64_t> new_tokens, PagedKvPool& pool, AttentionPath path,
                     std::span<float> y, PagedKvPool* index_pool);
  void check_io(std::span<const float> x, int64_t batch, int64_t seq, std::span<float> y,
                int64_t cache_batch) const;
  void set_uniform_positions(int64_t batch, int64_t seq, int64_t first_position);
  void init_rope();
  // Shared first half (src/model/mla_projection.h, the chain training runs too): q (N, H, Dn+Dr)
  // with RoPE applied and latent rows (N, R+Dr) normed and roped, into the workspace; row i
  // sits at rotary position workspace positions[i].
  void project_inputs(const float* x, int64_t n);
  void absorb_queries(int64_t n);  // absorbed path: q~ = W_UK^T q_nope, then q_pe
  void expand_kv(int64_t n);       // naive path: per-head k_nope and v from c_kv
  void write_naive_rows(int64_t row, float* keys, float* values) const;
  void attend(std::span<const detail::SeqSlice> slices, AttentionPath path);
  // Runs ws_->attention_params (one per slice, all heads): dense through the fused latent kernel
  // (latent_kernel) or the tiled one, or split into dense heads and sparse heads per sparse_.
  void run_attention(std::span<const detail::SeqSlice> slices, bool latent_kernel);
  void build_key_lists(std::span<const detail::SeqSlice> slices);
  void check_index_pool(std::span<const PagedKvPool::SeqId> seqs, const PagedKvPool& pool,
                        const PagedKvPool* index_pool) const;
  void select_with_indexer(const float* x, std::span<const PagedKvPool::SeqId> seqs,
                           std::span<const int64_t> new_tokens, const PagedKvPool& pool,
                           PagedKvPool& index_pool);
  void project_output(int64_t n, AttentionPath path, float* y);  // (W_UV then) W_O

  MlaConfig config_;
  MlaWeights weights_;
  MlaWeightView view_;  // into weights_ (whose buffers a move keeps) or borrowed memory
  bool borrowed_ = false;
  DType weight_dtype_ = DType::kF32;
  SparseSpec sparse_;
  std::unique_ptr<DsaIndexer> indexer_;
  std::unique_ptr<detail::Bf16Projections> bf16_;
  std::unique_ptr<detail::Workspace> ws_;
};

}  // namespace mla
