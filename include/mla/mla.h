// Umbrella header: the whole public API of mla.cpp.
#pragma once

#include "mla/config.h"
#include "mla/dtype.h"
#include "mla/error.h"
#include "mla/kv_cache.h"
#include "mla/layer.h"
#include "mla/presets.h"
#include "mla/safetensors.h"
#include "mla/weights.h"
