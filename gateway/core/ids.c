/* ids.c: random hex ids (trace ids, span ids, saga ids) from a per-thread
 * generator. */
#include "core.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>

/* xoshiro256** per thread, seeded once from getrandom: trace and saga ids
 * need to be unique, not secret, and a syscall per id showed up in the
 * profile of every flow call. */
static _Thread_local uint64_t rng_state[4];
static _Thread_local int rng_seeded;

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void) {
  if (!rng_seeded) {
    if (getrandom(rng_state, sizeof(rng_state), 0) != sizeof(rng_state)) {
      struct timespec ts; /* ns: threads seeded in one ms still differ */
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t seed = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
      seed ^= (uint64_t)(uintptr_t)&rng_seeded;
      for (int i = 0; i < 4; i++) { /* splitmix64 */
        seed += 0x9e3779b97f4a7c15ull;
        uint64_t z = seed;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        rng_state[i] = z ^ (z >> 31);
      }
    }
    rng_seeded = 1;
  }
  uint64_t *s = rng_state;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

void gw_ids_random_hex(char *out, size_t n) {
  static const char hex[] = "0123456789abcdef";
  uint64_t bits = 0;
  for (size_t i = 0; i < n; i++) {
    if (i % 16 == 0)
      bits = rng_next();
    out[i] = hex[bits & 15];
    bits >>= 4;
  }
  out[n] = 0;
}
