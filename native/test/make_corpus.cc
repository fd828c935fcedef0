// Writes the fuzz seed corpus: every known-answer envelope (as the fuzz input layout:
// context length, context, envelope), envelopes freshly sealed by the fuzz ring, and a few
// near misses (truncated, flipped). Usage: make_corpus <vectors.json> <out-dir>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "envelope.h"
#include "fuzz_ring.h"
#include "vectors.h"

namespace {
int g_count = 0;

bool WriteSeed(const std::string& dir, const std::string& context, const std::vector<uint8_t>& env) {
  std::vector<uint8_t> seed;
  seed.push_back(static_cast<uint8_t>(context.size()));
  seed.insert(seed.end(), context.begin(), context.end());
  seed.insert(seed.end(), env.begin(), env.end());
  char name[32];
  snprintf(name, sizeof name, "/seed-%03d", g_count++);
  std::string path = dir + name;
  FILE* f = fopen(path.c_str(), "wb");
  if (!f) {
    fprintf(stderr, "make_corpus: %s: %s\n", path.c_str(), strerror(errno));
    return false;
  }
  bool ok = fwrite(seed.data(), 1, seed.size(), f) == seed.size();
  return fclose(f) == 0 && ok;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: make_corpus <vectors.json> <out-dir>\n");
    return 2;
  }
  const std::string dir = argv[2];
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "make_corpus: mkdir %s: %s\n", dir.c_str(), strerror(errno));
    return 1;
  }
  try {
    vectors::Json root = vectors::Load(argv[1]);
    bool ok = true;
    for (const vectors::Json& ev : root["envelopes"].arr) {
      std::vector<uint8_t> env = vectors::FromHex(ev["envelopeHex"].S());
      const std::string& ctx = ev["context"].S();
      if (ctx.size() > 255) continue;
      ok &= WriteSeed(dir, ctx, env);
      std::vector<uint8_t> flipped = env;
      flipped[flipped.size() / 2] ^= 0x10;
      ok &= WriteSeed(dir, ctx, flipped);
      ok &= WriteSeed(dir, ctx, std::vector<uint8_t>(env.begin(), env.begin() + sealed::kHeaderSize));
    }
    const sealed::KeyRing& ring = fuzz::Ring();
    for (size_t n : {0, 1, 15, 16, 17, 100, 300}) {
      std::vector<uint8_t> pt(n, '{');
      std::string ctx = n % 2 ? "store:default:" + std::string(64, 'a') : "manager:audex";
      ok &= WriteSeed(dir, ctx,
                      sealed::Seal(ring, pt.data(), pt.size(), ctx, 1763769600000ull, n ? 1763798400000ull : 0));
    }
    if (!ok) return 1;
  } catch (const std::exception& e) {
    fprintf(stderr, "make_corpus: %s\n", e.what());
    return 1;
  }
  printf("make_corpus: %d seeds in %s\n", g_count, dir.c_str());
  return 0;
}
