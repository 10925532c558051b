// mla.Config (every MlaConfig field, by keyword) and the configs of the systems we reproduce
// (presets.h).
#include <pybind11/operators.h>
#include <pybind11/stl.h>

#include <string>

#include "bindings.h"
#include "mla/config.h"
#include "mla/error.h"
#include "mla/fields.h"
#include "mla/presets.h"

namespace py = pybind11;

namespace mla::python {

void bind_config(py::module_& m) {
  py::class_<MlaConfig> c(m, "Config",
                          "Every hyper-parameter of one MLA layer (Hugging Face config.json names; "
                          "num_heads is num_attention_heads).");
  c.def(py::init([](const py::kwargs& fields) {
          // Set through the attributes, so that an unknown name is refused like a bad value.
          py::object obj = py::cast(MlaConfig{});
          for (const auto& [key, value] : fields) {
            const auto name = key.cast<std::string>();
            if (!py::hasattr(obj, name.c_str()) || name.rfind("_", 0) == 0) {
              throw Error("Config: unknown field '" + name + "'");
            }
            py::setattr(obj, name.c_str(), value);
          }
          auto config = obj.cast<MlaConfig>();
          config.validate();
          return config;
        }),
        "Config(**fields): unset fields keep their defaults; validated.");
  // One property per field of MlaConfig::visit_fields, read and written through the list.
  static const std::vector<std::string> kFields = field_names<MlaConfig>();
  for (const std::string& name : kFields) {
    c.def_property(
        name.c_str(), [name](const MlaConfig& self) { return *get_field(self, name); },
        [name](MlaConfig& self, const FieldValue& value) {
          set_field(self, name, value, "config");
        });
  }
  c.def_property_readonly("out_size", &MlaConfig::out_size)
      .def_property_readonly("latent_dim", &MlaConfig::latent_dim, "cached numbers per token")
      .def_property_readonly("softmax_scale", &MlaConfig::softmax_scale)
      .def("validate", &MlaConfig::validate, "Raises ValueError naming the first bad field.")
      .def("to_json", &config_to_json, "The config as Hugging Face config.json text.")
      .def_static(
          "from_json", [](const std::string& text) { return parse_config_json(text, "config"); },
          py::arg("text"), "Parses config.json text (Hugging Face names); validated.")
      .def_static("load", &load_config_json, py::arg("path"), "Reads a config.json file.")
      .def_static("preset", &preset_config, py::arg("name"),
                  "A named config: deepseek-v2-lite, deepseek-v2, deepseek-v3, tiny.")
      .def_static("preset_names", &preset_names, "The names Config.preset takes.")
      .def(py::self == py::self)
      .def("__repr__", [](const MlaConfig& self) {
        std::string text = "mla.Config(";
        for (const std::string& name : kFields) {
          const FieldValue value = *get_field(self, name);
          text += (text.back() == '(' ? "" : ", ") + name + "=" +
                  std::visit(
                      [](const auto& v) -> std::string {
                        using T = std::decay_t<decltype(v)>;
                        if constexpr (std::is_same_v<T, bool>) return v ? "True" : "False";
                        if constexpr (std::is_same_v<T, std::string>) return "'" + v + "'";
                        if constexpr (std::is_same_v<T, double>) return format_number(v);
                        if constexpr (std::is_same_v<T, int64_t>) return std::to_string(v);
                      },
                      value);
        }
        return text + ")";
      });

  m.def("preset_mhla", &presets::mhla, py::arg("d_in"), py::arg("d_out"), py::arg("dl"),
        py::arg("num_head"), py::arg("dropout_rate"), py::arg("contextlenght"));
  m.def("preset_mla_config", &presets::mla_config, py::arg("d_model"), py::arg("num_heads"),
        py::arg("kv_compressed_dim"), py::arg("q_compressed_dim"), py::arg("rope_dim"),
        py::arg("seq_len"), py::arg("use_bias") = false);
  m.def(
      "preset_deepseek_v3",
      [](const py::kwargs& fields) {
        presets::ModelArgs args;
        for (const auto& [key, value] : fields) {
          const auto name = key.cast<std::string>();
          if (!set_field(args, name, value.cast<FieldValue>(), "ModelArgs")) {
            throw Error("ModelArgs: unknown field '" + name + "'");
          }
        }
        return presets::deepseek_v3(args);
      },
      "DeepSeek-V3's ModelArgs (keywords, the official defaults) as a Config.");
  m.def(
      "model_args_defaults",
      [] {
        py::dict defaults;
        const presets::ModelArgs args;
        for (const std::string& name : field_names<presets::ModelArgs>()) {
          defaults[py::str(name)] = *get_field(args, name);
        }
        return defaults;
      },
      "The fields of ModelArgs with their defaults, in order.");
  m.def("preset_latent_attention", &presets::latent_attention, py::arg("embed_dim"),
        py::arg("num_heads"), py::arg("latent_dim_ratio"));
  m.def("preset_ropeless_mla", &presets::ropeless_mla, py::arg("d_model"), py::arg("n_heads"),
        py::arg("kv_latent_dim"));
}

}  // namespace mla::python
