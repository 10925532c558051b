// mla.Config (every MlaConfig field, by keyword) and the configs of the systems we reproduce
// (presets.h).
#include <pybind11/stl.h>

#include <string>

#include "bindings.h"
#include "mla/config.h"
#include "mla/error.h"
#include "mla/presets.h"

namespace py = pybind11;

namespace mla::python {
namespace {

LatentNorm parse_latent_norm(const std::string& name) {
  for (LatentNorm n : {LatentNorm::kRmsNorm, LatentNorm::kLayerNorm, LatentNorm::kNone}) {
    if (name == latent_norm_name(n)) return n;
  }
  throw Error("config: latent_norm: must be one of rmsnorm, layernorm, none, got '" + name + "'");
}

}  // namespace

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
  c.def_readwrite("hidden_size", &MlaConfig::hidden_size)
      .def_readwrite("num_heads", &MlaConfig::num_heads)
      .def_readwrite("q_lora_rank", &MlaConfig::q_lora_rank)
      .def_readwrite("kv_lora_rank", &MlaConfig::kv_lora_rank)
      .def_readwrite("qk_nope_head_dim", &MlaConfig::qk_nope_head_dim)
      .def_readwrite("qk_rope_head_dim", &MlaConfig::qk_rope_head_dim)
      .def_readwrite("v_head_dim", &MlaConfig::v_head_dim)
      .def_readwrite("rms_norm_eps", &MlaConfig::rms_norm_eps)
      .def_readwrite("rope_theta", &MlaConfig::rope_theta)
      .def_readwrite("max_position_embeddings", &MlaConfig::max_position_embeddings)
      .def_readwrite("projection_bias", &MlaConfig::projection_bias)
      .def_readwrite("output_size", &MlaConfig::output_size)
      .def_readwrite("attention_dropout", &MlaConfig::attention_dropout)
      .def_property(
          "latent_norm", [](const MlaConfig& self) { return latent_norm_name(self.latent_norm); },
          [](MlaConfig& self, const std::string& name) {
            self.latent_norm = parse_latent_norm(name);
          })
      .def_property_readonly("out_size", &MlaConfig::out_size)
      .def_property_readonly("latent_dim", &MlaConfig::latent_dim, "cached numbers per token")
      .def_property_readonly("softmax_scale", &MlaConfig::softmax_scale)
      .def("validate", &MlaConfig::validate)
      .def("to_json", &config_to_json)
      .def_static(
          "from_json", [](const std::string& text) { return parse_config_json(text, "config"); },
          py::arg("text"))
      .def_static("load", &load_config_json, py::arg("path"), "Reads a config.json file.")
      .def_static("preset", &preset_config, py::arg("name"))
      .def_static("preset_names", &preset_names)
      .def("__repr__", [](const MlaConfig& self) {
        return "mla.Config(hidden_size=" + std::to_string(self.hidden_size) +
               ", num_heads=" + std::to_string(self.num_heads) +
               ", q_lora_rank=" + std::to_string(self.q_lora_rank) +
               ", kv_lora_rank=" + std::to_string(self.kv_lora_rank) +
               ", qk_nope_head_dim=" + std::to_string(self.qk_nope_head_dim) +
               ", qk_rope_head_dim=" + std::to_string(self.qk_rope_head_dim) +
               ", v_head_dim=" + std::to_string(self.v_head_dim) + ", latent_norm='" +
               latent_norm_name(self.latent_norm) +
               "', projection_bias=" + (self.projection_bias ? "True" : "False") +
               ", output_size=" + std::to_string(self.out_size()) + ")";
      });

  m.def("preset_mhla", &presets::mhla, py::arg("d_in"), py::arg("d_out"), py::arg("dl"),
        py::arg("num_head"), py::arg("dropout_rate"), py::arg("contextlenght"));
  m.def("preset_mla_config", &presets::mla_config, py::arg("d_model"), py::arg("num_heads"),
        py::arg("kv_compressed_dim"), py::arg("q_compressed_dim"), py::arg("rope_dim"),
        py::arg("seq_len"), py::arg("use_bias") = false);
  const presets::ModelArgs d;
  m.def(
      "preset_deepseek_v3",
      [](int64_t dim, int64_t n_heads, int64_t q_lora_rank, int64_t kv_lora_rank,
         int64_t qk_nope_head_dim, int64_t qk_rope_head_dim, int64_t v_head_dim,
         int64_t max_seq_len, int64_t original_seq_len, double rope_theta, double rope_factor,
         int64_t beta_fast, int64_t beta_slow, double mscale) {
        return presets::deepseek_v3(presets::ModelArgs{
            dim, n_heads, q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim,
            max_seq_len, original_seq_len, rope_theta, rope_factor, beta_fast, beta_slow, mscale});
      },
      py::arg("dim") = d.dim, py::arg("n_heads") = d.n_heads,
      py::arg("q_lora_rank") = d.q_lora_rank, py::arg("kv_lora_rank") = d.kv_lora_rank,
      py::arg("qk_nope_head_dim") = d.qk_nope_head_dim,
      py::arg("qk_rope_head_dim") = d.qk_rope_head_dim, py::arg("v_head_dim") = d.v_head_dim,
      py::arg("max_seq_len") = d.max_seq_len, py::arg("original_seq_len") = d.original_seq_len,
      py::arg("rope_theta") = d.rope_theta, py::arg("rope_factor") = d.rope_factor,
      py::arg("beta_fast") = d.beta_fast, py::arg("beta_slow") = d.beta_slow,
      py::arg("mscale") = d.mscale);
  m.def("preset_latent_attention", &presets::latent_attention, py::arg("embed_dim"),
        py::arg("num_heads"), py::arg("latent_dim_ratio"));
  m.def("preset_ropeless_mla", &presets::ropeless_mla, py::arg("d_model"), py::arg("n_heads"),
        py::arg("kv_latent_dim"));
}

}  // namespace mla::python
