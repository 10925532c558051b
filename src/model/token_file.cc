// The token file of `mla forward`: safetensors with one I32 or I64 tensor `tokens` [batch, seq].
// The float reader (io/) knows no integer dtypes, so this small reader parses the header itself,
// checking every offset against the file size before reading.
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mla/error.h"
#include "mla/model.h"

namespace mla {

TokenBatch read_token_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the token file");
  std::ostringstream all;
  all << in.rdbuf();
  const std::string raw = all.str();
  const auto fail = [&](const std::string& why) { return Error(path + ": " + why); };
  if (raw.size() < 8) throw fail("too short for a safetensors file");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(raw[i]);
  if (header_len > raw.size() - 8) throw fail("header length exceeds the file size");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(raw.substr(8, header_len));
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("malformed header: ") + e.what());
  }
  if (!header.is_object() || !header.contains("tokens"))
    throw fail("no tensor 'tokens' (expected I32 or I64 [batch, seq])");
  const nlohmann::json& t = header["tokens"];
  if (!t.is_object()) throw fail("tensor 'tokens': malformed entry");
  const auto dtype_it = t.find("dtype");
  const std::string dtype =
      dtype_it != t.end() && dtype_it->is_string() ? dtype_it->get<std::string>() : "";
  if (dtype != "I32" && dtype != "I64")
    throw fail("tensor 'tokens': dtype must be I32 or I64, got '" + dtype + "'");
  const auto shape_it = t.find("shape");
  if (shape_it == t.end() || !shape_it->is_array() || shape_it->size() != 2 ||
      !(*shape_it)[0].is_number_unsigned() || !(*shape_it)[1].is_number_unsigned()) {
    throw fail("tensor 'tokens': shape must be [batch, seq]");
  }
  const uint64_t batch = (*shape_it)[0].get<uint64_t>(), seq = (*shape_it)[1].get<uint64_t>();
  if (batch < 1 || seq < 1 || batch > (1u << 20) || seq > (1u << 24) || batch * seq > (1u << 26))
    throw fail(
        "tensor 'tokens': shape [batch, seq] must have 1 <= batch, seq and at most 2^26 ids");
  const auto off_it = t.find("data_offsets");
  if (off_it == t.end() || !off_it->is_array() || off_it->size() != 2 ||
      !(*off_it)[0].is_number_unsigned() || !(*off_it)[1].is_number_unsigned()) {
    throw fail("tensor 'tokens': missing data_offsets");
  }
  const uint64_t begin = (*off_it)[0].get<uint64_t>(), end = (*off_it)[1].get<uint64_t>();
  const uint64_t width = dtype == "I32" ? 4 : 8;
  const uint64_t data_size = raw.size() - 8 - header_len;
  if (begin > end || end > data_size || end - begin != batch * seq * width)
    throw fail("tensor 'tokens': data_offsets do not match its shape and the file size");
  TokenBatch out;
  out.batch = static_cast<int64_t>(batch);
  out.seq = static_cast<int64_t>(seq);
  out.ids.resize(batch * seq);
  const char* data = raw.data() + 8 + header_len + begin;
  for (uint64_t i = 0; i < batch * seq; ++i) {
    int64_t v = 0;
    if (width == 4) {
      int32_t x = 0;
      std::memcpy(&x, data + 4 * i, 4);
      v = x;
    } else {
      std::memcpy(&v, data + 8 * i, 8);
    }
    if (v < 0 || v > std::numeric_limits<int32_t>::max()) {
      throw fail("tensor 'tokens': id " + std::to_string(v) + " at " + std::to_string(i) +
                 " is negative or too large");
    }
    out.ids[i] = static_cast<int32_t>(v);
  }
  return out;
}

}  // namespace mla
