// mla._mla.TrainBlock: the training block of src/train (MlaBlock, naive or absorbed form) for
// mla.torch's autograd Function. forward keeps the activations backward needs inside the object,
// so one TrainBlock serves one forward/backward pair at a time (mla.torch keeps a pool of them).
// Every array is read or written in place: inputs, outputs, weights and gradients are NumPy views
// of torch tensors' storage (float32, or float64 for gradcheck). Weights come as a list in
// weight_names() order, the Hugging Face names of MlaWeights::for_each_tensor.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "bindings.h"
#include "mla/config.h"
#include "mla/error.h"
#include "mla/safetensors.h"
#include "mla/weights.h"
#include "train/mla_block.h"

namespace py = pybind11;
using mla::train::MlaTensors;

namespace mla::python {
namespace {

struct WeightSlot {
  std::string name;
  std::vector<int64_t> shape;
};

std::vector<WeightSlot> weight_slots(const MlaConfig& c) {
  std::vector<WeightSlot> slots;
  const MlaWeightView names;
  names.for_each_tensor(c, [&](const std::string& n, const std::vector<int64_t>& shape, auto&) {
    slots.push_back({n, shape});
  });
  return slots;
}

std::string shape_text(const std::vector<py::ssize_t>& shape) {
  std::vector<int64_t> s(shape.begin(), shape.end());
  return shape_to_string(s);
}

// The data pointer of a C-contiguous buffer of element type T and exactly `shape`.
template <typename T>
T* checked(const py::buffer& b, const std::vector<int64_t>& shape, const std::string& what,
           bool writable) {
  const py::buffer_info info = b.request(writable);
  const char* want = sizeof(T) == 4 ? "float32" : "float64";
  if (info.itemsize != sizeof(T) || info.format != py::format_descriptor<T>::format()) {
    throw Error(what + ": expected " + want + " data, got buffer format '" + info.format + "'");
  }
  const std::vector<py::ssize_t> want_shape(shape.begin(), shape.end());
  if (info.shape != want_shape) {
    throw Error(what + ": expected shape " + shape_to_string(shape) + ", got " +
                shape_text(info.shape));
  }
  py::ssize_t stride = info.itemsize;
  for (py::ssize_t i = info.ndim - 1; i >= 0; --i) {
    const auto k = static_cast<size_t>(i);
    if (info.shape[k] > 1 && info.strides[k] != stride) {
      throw Error(what + ": the array must be C-contiguous");
    }
    stride *= info.shape[k];
  }
  return static_cast<T*>(info.ptr);
}

template <typename T>
class Block {
 public:
  Block(const MlaConfig& c, bool absorbed) : config_(c), slots_(weight_slots(c)), block_(c) {
    block_.set_absorbed(absorbed);
  }

  MlaTensors<T> tensors(const std::vector<py::buffer>& list, const char* what, bool writable) {
    if (list.size() != slots_.size()) {
      throw Error(std::string(what) + ": expected " + std::to_string(slots_.size()) +
                  " tensors, got " + std::to_string(list.size()));
    }
    MlaTensors<T> t;
    size_t i = 0;  // the list comes in for_each_tensor's order, as weight_names() gives it
    t.for_each_tensor(
        config_, [&](const std::string& name, const std::vector<int64_t>& shape, T*& slot) {
          slot = checked<T>(list[i++], shape, std::string(what) + " " + name, writable);
        });
    return t;
  }

  void forward(const py::buffer& out, const py::buffer& x, const std::vector<py::buffer>& w,
               int64_t batch, int64_t seq, bool training, uint64_t key) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (batch < 1 || seq < 1) throw Error("x: batch and seq must be positive");
    const T* xp = checked<T>(x, {batch, seq, config_.hidden_size}, "x", false);
    T* op = checked<T>(out, {batch, seq, config_.out_size()}, "out", true);
    const MlaTensors<T> wt = tensors(w, "weights", false);
    py::gil_scoped_release release;
    block_.forward(op, xp, wt, batch, seq, training, key);
    batch_ = batch;
    seq_ = seq;
  }

  // dx and grads must be zero (or hold what to accumulate onto): backward adds into them.
  void backward(const py::buffer& dx, const std::vector<py::buffer>& grads, const py::buffer& dout,
                const py::buffer& x, const std::vector<py::buffer>& w) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (batch_ == 0) throw Error("TrainBlock: backward before forward");
    const std::vector<int64_t> in_shape = {batch_, seq_, config_.hidden_size};
    T* dxp = checked<T>(dx, in_shape, "dx", true);
    const T* xp = checked<T>(x, in_shape, "x", false);
    const T* dop = checked<T>(dout, {batch_, seq_, config_.out_size()}, "grad_output", false);
    const MlaTensors<T> wt = tensors(w, "weights", false);
    const MlaTensors<T> gt = tensors(grads, "grads", true);
    py::gil_scoped_release release;
    block_.backward(dxp, gt, dop, xp, wt, scratch_);
  }

 private:
  MlaConfig config_;
  std::vector<WeightSlot> slots_;
  train::MlaBlock<T> block_;
  typename train::MlaBlock<T>::Scratch scratch_;
  int64_t batch_ = 0, seq_ = 0;
  std::mutex mutex_;
};

// One Python type for both element types: the dtype is chosen at construction.
class TrainBlock {
 public:
  TrainBlock(const MlaConfig& c, const std::string& dtype, bool absorbed) : config_(c) {
    c.validate();
    if (dtype == "f32" || dtype == "float32") {
      impl_ = std::make_unique<Block<float>>(c, absorbed);
    } else if (dtype == "f64" || dtype == "float64") {
      impl_ = std::make_unique<Block<double>>(c, absorbed);
    } else {
      throw Error("dtype: must be 'float32' or 'float64', got '" + dtype + "'");
    }
    dtype_ = dtype == "f32" || dtype == "float32" ? "float32" : "float64";
  }

  void forward(const py::buffer& out, const py::buffer& x, const std::vector<py::buffer>& w,
               int64_t batch, int64_t seq, bool training, uint64_t key) {
    std::visit([&](auto& b) { b->forward(out, x, w, batch, seq, training, key); }, impl_);
  }
  void backward(const py::buffer& dx, const std::vector<py::buffer>& g, const py::buffer& dout,
                const py::buffer& x, const std::vector<py::buffer>& w) {
    std::visit([&](auto& b) { b->backward(dx, g, dout, x, w); }, impl_);
  }
  const std::string& dtype() const { return dtype_; }
  const MlaConfig& config() const { return config_; }

 private:
  MlaConfig config_;
  std::string dtype_;
  std::variant<std::unique_ptr<Block<float>>, std::unique_ptr<Block<double>>> impl_;
};

}  // namespace

void bind_train(py::module_& m) {
  py::class_<TrainBlock>(m, "TrainBlock",
                         "The MLA training block (forward keeping activations, hand-written "
                         "backward) on caller-owned float32 or float64 arrays.")
      .def(py::init<const MlaConfig&, const std::string&, bool>(), py::arg("config"),
           py::arg("dtype") = "float32", py::arg("absorbed") = false)
      .def_property_readonly("dtype", &TrainBlock::dtype)
      .def_property_readonly("config", &TrainBlock::config)
      .def("forward", &TrainBlock::forward, py::arg("out"), py::arg("x"), py::arg("weights"),
           py::arg("batch"), py::arg("seq"), py::arg("training") = false,
           py::arg("dropout_key") = 0,
           "Writes out (B, S, out_size) from x (B, S, hidden); keeps what backward needs.")
      .def("backward", &TrainBlock::backward, py::arg("dx"), py::arg("grads"),
           py::arg("grad_output"), py::arg("x"), py::arg("weights"),
           "Adds the gradients of the last forward into dx and grads (weight_names order).");
  m.def(
      "weight_shapes",
      [](const MlaConfig& c) {
        c.validate();
        std::vector<std::pair<std::string, std::vector<int64_t>>> out;
        for (auto& s : weight_slots(c)) out.emplace_back(s.name, s.shape);
        return out;
      },
      py::arg("config"), "(name, shape) of every weight tensor of a layer with this config.");
}

}  // namespace mla::python
