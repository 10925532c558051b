// Tensor sets: a layer kind's tensors declared once as a struct of Slots with one for_each_tensor
// list (MlaTensorSet in mla/weights.h, GqaTensorSet in mla/gqa_layer.h). The same list then
// serves owned weights (Slot = std::vector<float>), views into a flat parameter or gradient
// buffer (T*) and borrowed read-only weights (const float*).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace mla {

// Gives a tensor set its for_each_tensor(config, visit), on a mutable or a const set, from the
// set's one static list visit_all(set, config, visit) (which the set befriends this base for).
template <typename Set>
struct TensorList {
  template <typename Config, typename Visit>
  void for_each_tensor(const Config& config, Visit&& visit) {
    Set::visit_all(static_cast<Set&>(*this), config, visit);
  }
  template <typename Config, typename Visit>
  void for_each_tensor(const Config& config, Visit&& visit) const {
    Set::visit_all(static_cast<const Set&>(*this), config, visit);
  }
};

// Visits two tensor sets of one kind together, tensor by tensor through their one list:
// visit(name, shape, slot of a, slot of b). Converts between storage kinds (owned to view, ...).
template <typename Config, typename SetA, typename SetB, typename Visit>
void for_each_tensor_pair(const Config& config, SetA& a, SetB& b, Visit&& visit) {
  using SlotA = std::conditional_t<std::is_const_v<SetA>, const typename SetA::slot_type,
                                   typename SetA::slot_type>;
  std::vector<SlotA*> slots;
  a.for_each_tensor(config, [&](const std::string&, const std::vector<int64_t>&, SlotA& slot) {
    slots.push_back(&slot);
  });
  size_t i = 0;
  b.for_each_tensor(config, [&](const std::string& name, const std::vector<int64_t>& shape,
                                auto& slot) { visit(name, shape, *slots[i++], slot); });
}

}  // namespace mla
