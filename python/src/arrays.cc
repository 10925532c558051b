#include "arrays.h"

#include <atomic>
#include <string>

#include "mla/dtype.h"
#include "mla/error.h"

namespace py = pybind11;

namespace mla::python {
namespace {

std::atomic<uintptr_t> g_input_address{0};

std::string shape_text(const std::vector<py::ssize_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

bool c_contiguous(const py::buffer_info& info) {
  py::ssize_t expected = info.itemsize;
  for (py::ssize_t i = info.ndim - 1; i >= 0; --i) {
    if (info.shape[static_cast<size_t>(i)] > 1 && info.strides[static_cast<size_t>(i)] != expected)
      return false;
    expected *= info.shape[static_cast<size_t>(i)];
  }
  return true;
}

}  // namespace

InputView read_input(const py::buffer& x, bool bf16, int64_t width, const char* what,
                     std::vector<float>& scratch) {
  const py::buffer_info info = x.request();
  const std::string name(what);
  if (info.ndim != 2 && info.ndim != 3) {
    throw Error(name + ": expected shape (batch, seq, " + std::to_string(width) + ") or (seq, " +
                std::to_string(width) + "), got " + shape_text(info.shape));
  }
  if (info.shape.back() != width) {
    throw Error(name + ": last dimension is " + std::to_string(info.shape.back()) + ", expected " +
                std::to_string(width) + " (shape " + shape_text(info.shape) + ")");
  }
  const bool is_f32 = info.itemsize == 4 && info.format == py::format_descriptor<float>::format();
  const bool is_16 = info.itemsize == 2 && (info.format == "H" || info.format == "h");
  if (bf16 ? !is_16 : !is_f32) {
    throw Error(name + ": expected " + (bf16 ? "bf16 bits (2-byte integers)" : "float32") +
                " data, got buffer format '" + info.format + "'");
  }
  if (!c_contiguous(info)) throw Error(name + ": the array must be C-contiguous");
  InputView v;
  v.two_dims = info.ndim == 2;
  v.batch = v.two_dims ? 1 : info.shape[0];
  v.seq = info.shape[v.two_dims ? 0 : 1];
  if (v.batch < 1 || v.seq < 1) throw Error(name + ": empty input " + shape_text(info.shape));
  const auto n = static_cast<size_t>(info.size);
  g_input_address = reinterpret_cast<uintptr_t>(info.ptr);
  if (bf16) {
    scratch.resize(n);
    convert_to_f32(info.ptr, DType::kBF16, n, scratch.data());
    v.data = std::span<const float>(scratch.data(), n);
  } else {
    v.data = std::span<const float>(static_cast<const float*>(info.ptr), n);
  }
  return v;
}

uintptr_t input_address() {
  return g_input_address;
}

py::array_t<float> output_array(const std::vector<int64_t>& shape, const py::object& out) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  if (out.is_none()) return py::array_t<float>(dims);
  if (!py::isinstance<py::array_t<float>>(out)) {
    throw Error("out: expected a float32 NumPy array of shape " + shape_text(dims));
  }
  auto a = py::reinterpret_borrow<py::array_t<float>>(out);
  if (!a.writeable()) throw Error("out: the array is read-only");
  const py::buffer_info info = a.request(true);
  if (info.shape != dims) {
    throw Error("out: expected shape " + shape_text(dims) + ", got " + shape_text(info.shape));
  }
  if (!c_contiguous(info)) throw Error("out: the array must be C-contiguous");
  return a;
}

}  // namespace mla::python
