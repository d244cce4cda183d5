// A dataset resident in the engine: normalised fp32 features [count, dim] and int labels.
#pragma once
#include <cstdint>
#include <vector>

namespace bsx::cpu {

struct Dataset {
  // Unique per dataset made in this process (never reused): backends that keep a device copy
  // cache it under this id.
  std::uint64_t id = 0;
  std::int64_t count = 0;
  std::int64_t dim = 0;
  int classes = 0;
  std::vector<float> features;       // [count, dim]
  std::vector<std::int32_t> labels;  // [count], each in [0, classes)

  const float* row(std::int64_t i) const { return features.data() + i * dim; }
};

}  // namespace bsx::cpu
