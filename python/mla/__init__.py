"""mla.cpp from Python: DeepSeek's Multi-head Latent Attention on the CPU.

The general layer is `Layer(Config(...))`; the seed systems have their own constructors
(docs/seeds.md): `MLA(MLAConfig(...))` (001), `multiheadlatentattention` / `MHLA` (000),
`DeepSeekV3MLA(ModelArgs(...))` (002), `LatentAttention` (003), `RopelessMLA` (004).
Bad input raises ValueError with the library's message. See docs/python.md.
"""

from ._mla import Config, LatentCache, NaiveKVCache, __version__, input_address
from .layer import Layer, stats
from .seeds import (MHLA, MLA, DeepSeekV3MLA, LatentAttention, LatentKVCache, MLAConfig,
                    ModelArgs, RopelessMLA, multiheadlatentattention)

__all__ = [
    "__version__", "Config", "Layer", "LatentCache", "NaiveKVCache", "input_address", "stats", "MLA", "MLAConfig",
    "MHLA", "multiheadlatentattention", "DeepSeekV3MLA", "ModelArgs", "LatentAttention",
    "RopelessMLA", "LatentKVCache",
]
