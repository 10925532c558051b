// mla.Layer: one MLA layer (random, or loaded from a checkpoint folder) called on NumPy arrays.
// Inputs are read in place (arrays.h), outputs are written straight into the returned (or the
// given `out`) array, weights are NumPy views of the layer's own memory. The GIL is released
// while the layer computes; a mutex keeps two Python threads from using one layer at once (its
// workspace is not shared-safe).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "arrays.h"
#include "bindings.h"
#include "mla/atomic_file.h"
#include "mla/error.h"
#include "mla/layer.h"
#include "mla/safetensors.h"
#include "mla/weights.h"

namespace py = pybind11;

namespace mla::python {
namespace {

struct PyLayer {
  PyLayer(const MlaConfig& config, MlaWeights weights, DType dtype)
      : layer(config, std::move(weights), dtype) {}
  MlaLayer layer;
  std::mutex mutex;
  std::vector<float> scratch;  // bf16 inputs widened to float32
};

// Takes the layer's mutex without holding the GIL (a thread computing with the mutex held must
// be able to take the GIL back when it finishes).
std::unique_lock<std::mutex> lock_layer(PyLayer& l) {
  std::unique_lock<std::mutex> lock(l.mutex, std::defer_lock);
  py::gil_scoped_release release;
  lock.lock();
  return lock;
}

DType parse_weight_dtype(const std::string& name) {
  if (name == "f32" || name == "F32") return DType::kF32;
  if (name == "bf16" || name == "BF16") return DType::kBF16;
  throw Error("weight_dtype: must be 'f32' or 'bf16', got '" + name + "'");
}

AttentionPath parse_path(const std::string& name) {
  if (name == "absorbed") return AttentionPath::kAbsorbed;
  if (name == "naive") return AttentionPath::kNaive;
  throw Error("path: must be 'absorbed' or 'naive', got '" + name + "'");
}

struct TensorRef {
  std::vector<int64_t> shape;
  std::vector<float>* data = nullptr;
};

TensorRef find_tensor(PyLayer& l, const std::string& name) {
  TensorRef ref;
  std::vector<std::string> names;
  l.layer.mutable_weights().for_each_tensor(
      l.layer.config(),
      [&](const std::string& n, const std::vector<int64_t>& shape, std::vector<float>& data) {
        names.push_back(n);
        if (n == name) ref = TensorRef{shape, &data};
      });
  if (ref.data == nullptr) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw Error("weights: no tensor '" + name + "' in this layer (it has: " + known + ")");
  }
  return ref;
}

py::array_t<float> forward(PyLayer& l, const py::buffer& x, bool bf16, const py::object& cache,
                           const py::object& path_name, int64_t start_position,
                           const py::object& out) {
  auto lock = lock_layer(l);
  const MlaConfig& c = l.layer.config();
  const InputView in = read_input(x, bf16, c.hidden_size, "x", l.scratch);
  std::vector<int64_t> shape = {in.batch, in.seq, c.out_size()};
  if (in.two_dims) shape.erase(shape.begin());
  py::array_t<float> y = output_array(shape, out);
  const std::span<float> ys(y.mutable_data(), static_cast<size_t>(y.size()));
  const bool has_path = !path_name.is_none();
  const AttentionPath path =
      has_path ? parse_path(path_name.cast<std::string>()) : AttentionPath::kAbsorbed;
  if (cache.is_none()) {
    if (start_position < 0) {
      throw Error("start_position: must not be negative, got " + std::to_string(start_position));
    }
    py::gil_scoped_release release;
    l.layer.prefill(in.data, in.batch, in.seq, ys, path, start_position);
    return y;
  }
  if (start_position != 0) {
    throw Error("start_position: with a cache the position is the cache's length; pass 0");
  }
  if (py::isinstance<LatentCache>(cache)) {
    if (has_path && path != AttentionPath::kAbsorbed)
      throw Error("path: a LatentCache serves the absorbed path, not 'naive'");
    auto& lc = cache.cast<LatentCache&>();
    py::gil_scoped_release release;
    l.layer.forward(in.data, in.batch, in.seq, lc, ys);
  } else if (py::isinstance<NaiveKvCache>(cache)) {
    if (has_path && path != AttentionPath::kNaive)
      throw Error("path: a NaiveKvCache serves the naive path, not 'absorbed'");
    auto& nc = cache.cast<NaiveKvCache&>();
    py::gil_scoped_release release;
    l.layer.forward(in.data, in.batch, in.seq, nc, ys);
  } else {
    throw Error("cache: expected mla.LatentCache, mla.NaiveKvCache or None");
  }
  return y;
}

py::array_t<float> attention_weights(PyLayer& l, const py::buffer& x, bool bf16,
                                     int64_t start_position) {
  auto lock = lock_layer(l);
  const MlaConfig& c = l.layer.config();
  const InputView in = read_input(x, bf16, c.hidden_size, "x", l.scratch);
  std::vector<float> p;
  {
    py::gil_scoped_release release;
    p = l.layer.attention_weights(in.data, in.batch, in.seq, start_position);
  }
  std::vector<int64_t> shape = {in.batch, c.num_heads, in.seq, in.seq};
  if (in.two_dims) shape.erase(shape.begin());
  py::array_t<float> out(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  std::memcpy(out.mutable_data(), p.data(), p.size() * sizeof(float));
  return out;
}

void save(PyLayer& l, const std::string& dir, const std::string& dtype) {
  auto lock = lock_layer(l);
  if (l.layer.weight_dtype() != DType::kF32) {
    throw Error("save: a BF16 layer keeps no float32 projections; save the layer made with f32");
  }
  const DType store = dtype == "bf16" || dtype == "BF16" ? DType::kBF16 : DType::kF32;
  if (store == DType::kF32 && dtype != "f32" && dtype != "F32") {
    throw Error("dtype: must be 'f32' or 'bf16', got '" + dtype + "'");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the folder: " + ec.message());
  write_file_atomic(dir + "/config.json", config_to_json(l.layer.config()) + "\n");
  save_layer_weights(dir + "/model.safetensors", l.layer.config(), 0, l.layer.weights(), store);
}

}  // namespace

void bind_layer(py::module_& m) {
  py::class_<PyLayer>(m, "Layer", "One Multi-head Latent Attention layer.")
      .def(py::init([](const MlaConfig& config, uint64_t seed, const std::string& weight_dtype) {
             config.validate();
             return std::make_unique<PyLayer>(config, MlaWeights::random(config, seed),
                                              parse_weight_dtype(weight_dtype));
           }),
           py::arg("config"), py::arg("seed") = 0, py::arg("weight_dtype") = "f32",
           "Random weights drawn from `seed` (deterministic).")
      .def_static(
          "load",
          [](const std::string& dir, int64_t layer, const std::string& weight_dtype) {
            const MlaConfig config = load_config_json(dir + "/config.json");
            MlaWeights w = load_layer_weights(CheckpointDir::open(dir), config, layer);
            return std::make_unique<PyLayer>(config, std::move(w),
                                             parse_weight_dtype(weight_dtype));
          },
          py::arg("dir"), py::arg("layer") = 0, py::arg("weight_dtype") = "f32",
          "Loads layer `layer` of a checkpoint folder (config.json + safetensors).")
      .def("save", &save, py::arg("dir"), py::arg("dtype") = "f32",
           "Writes dir/config.json and dir/model.safetensors (as layer 0).")
      .def_property_readonly(
          "config", [](PyLayer& l) { return l.layer.config(); }, "The layer's mla.Config (a copy).")
      .def_property_readonly(
          "weight_dtype",
          [](PyLayer& l) { return std::string(dtype_name(l.layer.weight_dtype())); })
      .def("forward", &forward, py::arg("x"), py::arg("bf16") = false,
           py::arg("cache") = py::none(), py::arg("path") = py::none(),
           py::arg("start_position") = 0, py::arg("out") = py::none())
      .def("attention_weights", &attention_weights, py::arg("x"), py::arg("bf16") = false,
           py::arg("start_position") = 0)
      .def(
          "weight_names",
          [](PyLayer& l) {
            std::vector<std::string> names;
            MlaWeights probe;
            probe.for_each_tensor(l.layer.config(),
                                  [&](const std::string& n, const std::vector<int64_t>&,
                                      std::vector<float>&) { names.push_back(n); });
            return names;
          },
          "The Hugging Face names of the layer's weight tensors.")
      .def(
          "weight",
          [](py::object self, const std::string& name) {
            PyLayer& l = self.cast<PyLayer&>();
            TensorRef t = find_tensor(l, name);
            // A writable view of the layer's memory; the layer stays alive while the view does.
            return py::array_t<float>(std::vector<py::ssize_t>(t.shape.begin(), t.shape.end()),
                                      t.data->data(), self);
          },
          py::arg("name"), "A writable float32 NumPy view of one weight tensor's memory.")
      .def(
          "set_weight",
          [](PyLayer& l, const std::string& name,
             const py::array_t<float, py::array::c_style | py::array::forcecast>& value) {
            auto lock = lock_layer(l);
            TensorRef t = find_tensor(l, name);
            std::vector<int64_t> got(value.shape(), value.shape() + value.ndim());
            if (got != t.shape) {
              throw Error("weights: " + name + ": expected shape " + shape_to_string(t.shape) +
                          ", got " + shape_to_string(got));
            }
            std::memcpy(t.data->data(), value.data(), t.data->size() * sizeof(float));
          },
          py::arg("name"), py::arg("value"));
}

}  // namespace mla::python
