// Philox 4x32-10 counter-based generator (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011; constants and round structure as in Random123). Written once for the
// host and the device so that a seed gives the same weights on every backend.
// @bsx/core has the same generator in TypeScript (packages/core-ts/src/rng/philox.ts).
#pragma once
#include <cstdint>

#include "engine/host_device.h"

namespace bsx {

struct Philox4x32 {
  std::uint32_t v[4];
};

BSX_HD void philox_mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t* hi,
                           std::uint32_t* lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  *hi = static_cast<std::uint32_t>(p >> 32);
  *lo = static_cast<std::uint32_t>(p);
}

// counter[4], key[2] -> four 32-bit words.
BSX_HD Philox4x32 philox4x32_10(const std::uint32_t ctr_in[4], const std::uint32_t key_in[2]) {
  constexpr std::uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr std::uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  std::uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
  std::uint32_t k0 = key_in[0], k1 = key_in[1];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += W0;
      k1 += W1;
    }
    std::uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(M0, c0, &hi0, &lo0);
    philox_mulhilo(M1, c2, &hi1, &lo1);
    const std::uint32_t n0 = hi1 ^ c1 ^ k0;
    const std::uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// A uniform float in [0, 1) from the top 24 bits of a word (exactly representable).
BSX_HD float philox_uniform01(std::uint32_t x) {
  return static_cast<float>(x >> 8) * (1.0f / 16777216.0f);
}

// Streams of the engine, the third counter word: one per purpose, so that no two uses of a
// seed ever share a counter.
enum PhiloxStream : std::uint32_t {
  kStreamInitWeights = 0x100,  // + layer index
  kStreamInitBiases = 0x200,   // + layer index (biases start at zero; reserved)
};

// The seed of a replica as a Philox key: low and high 32 bits of an integer < 2^53.
BSX_HD void philox_key_from_seed(std::uint64_t seed, std::uint32_t key[2]) {
  key[0] = static_cast<std::uint32_t>(seed);
  key[1] = static_cast<std::uint32_t>(seed >> 32);
}

}  // namespace bsx
