// The pieces of the `mla._mla` extension module, one function per binding file.
#pragma once

#include <pybind11/pybind11.h>

namespace mla::python {

void bind_config(pybind11::module_& m);  // Config, the system presets
void bind_cache(pybind11::module_& m);   // LatentCache, NaiveKvCache
void bind_layer(pybind11::module_& m);   // Layer
void bind_train(pybind11::module_& m);   // TrainBlock, weight_shapes (mla.torch)

}  // namespace mla::python
