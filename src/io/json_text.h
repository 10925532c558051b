// JSON values quoted in error messages: invalid UTF-8 from a hostile file is replaced instead of
// making the message itself throw.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mla {

inline std::string json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mla
