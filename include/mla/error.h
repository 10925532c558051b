// mla::Error: the one exception type the library throws for bad input.
// The message always names what is wrong and where (file, tensor, field).
#pragma once

#include <stdexcept>
#include <string>

namespace mla {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace mla
