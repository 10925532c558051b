"""mla.cpp from Python: DeepSeek's Multi-head Latent Attention on the CPU.

The general layer is `Layer(Config(...))`; the MLA systems we reproduce have their own
constructors (docs/presets.md): `MLA(MLAConfig(...))`, `multiheadlatentattention` / `MHLA`,
`DeepSeekV3MLA(ModelArgs(...))`, `LatentAttention`, `RopelessMLA`.
Bad input raises ValueError with the library's message. See docs/python.md.
"""

from ._mla import Config, LatentCache, NaiveKvCache, __version__, input_address
from .layer import Layer, stats
from .presets import (MHLA, MLA, DeepSeekV3MLA, LatentAttention, LatentKvCache, MLAConfig,
                      ModelArgs, RopelessMLA, multiheadlatentattention)

__all__ = [
    "__version__", "Config", "Layer", "LatentCache", "NaiveKvCache", "input_address", "stats",
    "MLA", "MLAConfig", "MHLA", "multiheadlatentattention", "DeepSeekV3MLA", "ModelArgs", "LatentAttention",
    "RopelessMLA", "LatentKvCache",
]
