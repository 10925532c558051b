"""Type stubs of mla.torch (python/mla/torch/)."""
from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import nn

from .._mla import Config, LatentCache as _CoreLatentCache
from ..presets import LatentKvCache, MLAConfig as MLAConfig

class MlaFunction(torch.autograd.Function): ...

class MultiHeadLatentAttention(nn.Module):
    train_form: str
    def __init__(self, config: Config, seed: int = 0, train_form: str = "naive") -> None: ...
    @classmethod
    def load(cls, dir: Any, layer: int = 0,
             train_form: str = "naive") -> "MultiHeadLatentAttention": ...
    @property
    def config(self) -> Config: ...
    def weight_names(self) -> list[str]: ...
    def forward(self, x: torch.Tensor,
                cache: Optional[_CoreLatentCache] = None) -> torch.Tensor: ...
    def __call__(self, x: torch.Tensor,
                 cache: Optional[_CoreLatentCache] = None) -> torch.Tensor: ...
    def new_cache(self, batch: int, capacity: int) -> _CoreLatentCache: ...
    def attention_weights(self, x: torch.Tensor) -> torch.Tensor: ...

class MLA(MultiHeadLatentAttention):
    seq_len: int
    def __init__(self, config: Union[MLAConfig, Config], seed: int = 0,
                 train_form: str = "naive") -> None: ...

class multiheadlatentattention(MultiHeadLatentAttention):
    contextlenght: int
    def __init__(self, d_in: int, d_out: int, dl: int, num_head: int, dropout_rate: float,
                 contextlenght: int, seed: int = 0) -> None: ...

MHLA = multiheadlatentattention

class LatentAttention(MultiHeadLatentAttention):
    def __init__(self, embed_dim: int, num_heads: int, latent_dim_ratio: float,
                 seed: int = 0) -> None: ...
    def forward(self, query: torch.Tensor, key: Optional[torch.Tensor] = None,  # type: ignore[override]
                value: Optional[torch.Tensor] = None, need_weights: bool = False
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Dict[str, torch.Tensor]]: ...
    def __call__(self, query: torch.Tensor, key: Optional[torch.Tensor] = None,  # type: ignore[override]
                 value: Optional[torch.Tensor] = None, need_weights: bool = False
                 ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Dict[str, torch.Tensor]]: ...

class RopelessMLA(MultiHeadLatentAttention):
    def __init__(self, d_model: int, n_heads: int, kv_latent_dim: int, seed: int = 0) -> None: ...
    def forward(self, x: torch.Tensor, kv_cache: Optional[LatentKvCache] = None,  # type: ignore[override]
                past_length: int = 0, use_cache: bool = True
                ) -> Tuple[torch.Tensor, Optional[LatentKvCache]]: ...
    def __call__(self, x: torch.Tensor, kv_cache: Optional[LatentKvCache] = None,  # type: ignore[override]
                 past_length: int = 0, use_cache: bool = True
                 ) -> Tuple[torch.Tensor, Optional[LatentKvCache]]: ...
    @property
    def absorbed_k(self) -> torch.Tensor: ...

class LatentCache:
    layers: Dict[int, LatentKvCache]
    def __init__(self) -> None: ...
    def get_seq_length(self, layer_idx: int = 0) -> int: ...
    def layer(self, layer_idx: int, config: Config, batch: int) -> LatentKvCache: ...
    def __len__(self) -> int: ...
    @property
    def bytes_per_token(self) -> int: ...

class DeepseekV3Attention(MultiHeadLatentAttention):
    layer_idx: int
    hidden_size: int
    num_heads: int
    q_head_dim: int
    softmax_scale: float
    def __init__(self, config: Any, layer_idx: Optional[int] = None, seed: int = 0,
                 train_form: str = "naive") -> None: ...
    def forward(self, hidden_states: torch.Tensor,  # type: ignore[override]
                attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.Tensor] = None,
                past_key_value: Optional[LatentCache] = None, output_attentions: bool = False,
                use_cache: bool = False, position_embeddings: Any = None,
                cache_position: Any = None, **kwargs: Any
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[LatentCache]]: ...

DeepseekV2Attention = DeepseekV3Attention
