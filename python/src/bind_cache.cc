// mla.LatentCache (absorbed path) and mla.NaiveKvCache (naive path): the caches a Layer appends
// to in step-by-step decoding.
#include <pybind11/numpy.h>

#include "bindings.h"
#include "mla/error.h"
#include "mla/kv_cache.h"

namespace py = pybind11;

namespace mla::python {
namespace {

// What both caches offer: construction from a config, their sizes and clear().
template <class Cache>
py::class_<Cache> bind_cache_class(py::module_& m, const char* name, const char* doc) {
  py::class_<Cache> c(m, name, doc);
  c.def(py::init(
            [](const MlaConfig& config, int64_t batch, int64_t capacity, int64_t start_position) {
              config.validate();  // its fields are writable from Python: check before sizing
              return Cache(config, batch, capacity, start_position);
            }),
        py::arg("config"), py::arg("batch"), py::arg("capacity"), py::arg("start_position") = 0)
      .def_property_readonly("batch", &Cache::batch, "sequences in the cache")
      .def_property_readonly("capacity", &Cache::capacity, "tokens each sequence can hold")
      .def_property_readonly("length", &Cache::length, "tokens cached per sequence")
      .def_property_readonly("start_position", &Cache::start_position,
                             "rotary position of the first cached token")
      .def_property_readonly("bytes", &Cache::bytes, "bytes the cache holds")
      .def_property_readonly("bytes_per_token", &Cache::bytes_per_token,
                             "cache bytes per token of one sequence")
      .def("clear", &Cache::clear, "Forgets every cached token (keeps the memory).");
  return c;
}

}  // namespace

void bind_cache(py::module_& m) {
  bind_cache_class<LatentCache>(m, "LatentCache",
                                "Latent KV cache of one layer: per token c_kv then k_pe (R + Dr "
                                "numbers), shared by all heads.")
      .def_property_readonly("row_width", &LatentCache::row_width,
                             "numbers per cached token (R + Dr)")
      .def(
          "rows",
          [](py::object self) {
            // A view (B, capacity, R + Dr) of the cache memory; the cache stays alive with it.
            auto& c = self.cast<LatentCache&>();
            return py::array_t<float>({c.batch(), c.capacity(), c.row_width()}, c.rows(0), self);
          },
          "A writable NumPy view (batch, capacity, R + Dr); rows [0, length) are filled.")
      .def(
          "_commit",
          [](LatentCache& c, int64_t tokens) {
            if (tokens < 0) throw Error("cache: token count must not be negative");
            c.check_room(tokens);
            c.commit(tokens);
          },
          py::arg("tokens"), "Marks `tokens` more rows as filled (after writing them via rows()).");
  bind_cache_class<NaiveKvCache>(m, "NaiveKvCache",
                                 "Per-head key and value cache of one layer (the naive path).");
}

}  // namespace mla::python
