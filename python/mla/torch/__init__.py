"""mla.torch: Multi-head Latent Attention as torch.nn.Modules over the C++ kernels.

- MultiHeadLatentAttention(mla.Config(...)): the general layer; weights are nn.Parameters with
  Hugging Face names; autograd runs our hand-written C++ backward (ops mla::attention and
  mla::attention_backward, registered with torch.library).
- MLA(MLAConfig(...)), multiheadlatentattention / MHLA, LatentAttention, RopelessMLA: the seed
  systems' constructors and call conventions (docs/presets.md), as nn.Modules.
- DeepseekV3Attention / DeepseekV2Attention (mla.torch.hf): drop-in for Hugging Face's
  attention with a latent cache (LatentCache).
See docs/python.md.
"""

from ..presets import MLAConfig
from ._ops import MlaFunction
from .hf import DeepseekV2Attention, DeepseekV3Attention, LatentCache
from .modules import MultiHeadLatentAttention
from .presets import MHLA, MLA, LatentAttention, RopelessMLA, multiheadlatentattention

__all__ = [
    "MultiHeadLatentAttention", "MLA", "MLAConfig", "MHLA", "multiheadlatentattention",
    "LatentAttention", "RopelessMLA", "DeepseekV3Attention", "DeepseekV2Attention",
    "LatentCache", "MlaFunction",
]
