// The extension module mla._mla. The Python package mla (python/mla/) wraps it; errors of the
// library (mla::Error: bad input, with the message naming the field) arrive as ValueError.
#include <pybind11/pybind11.h>

#include "arrays.h"
#include "bindings.h"
#include "mla/error.h"
#include "mla/version.h"

namespace py = pybind11;

PYBIND11_MODULE(_mla, m) {
  m.doc() = "mla.cpp: DeepSeek's Multi-head Latent Attention on the CPU";
  m.attr("__version__") = MLA_VERSION;
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const mla::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  mla::python::bind_config(m);
  mla::python::bind_cache(m);
  mla::python::bind_layer(m);
  mla::python::bind_train(m);
  m.def("input_address", &mla::python::input_address,
        "Address of the memory the last call read its input from (zero-copy checks).");
}
