// Unit tests of the native core (no N-API): keys, envelopes, header, machine id, private dir.
// Usage: core_test [vectors.json] [case-name-prefix]
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cas.h"
#include "check.h"
#include "envelope.h"
#include "errors.h"
#include "keys.h"
#include "machine_id.h"
#include "private_dir.h"
#include "vectors.h"

#ifndef SEALED_VECTORS_PATH
#define SEALED_VECTORS_PATH "test/vectors/envelope-v1.json"
#endif

using namespace sealed;
using Bytes = std::vector<uint8_t>;
using vectors::FromHex;
using vectors::Json;

namespace {

std::string g_vectors_path = SEALED_VECTORS_PATH;

const Json& V() {
  static Json root = vectors::Load(g_vectors_path);
  return root;
}

std::string Hex(const uint8_t* p, size_t n) { return check::Hex(p, n); }
std::string Hex(const Bytes& b) { return Hex(b.data(), b.size()); }
Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }

std::unique_ptr<KeyRing> RingFor(const Json& kv) {
  return std::make_unique<KeyRing>(std::vector<std::string>{kv["ikm"].S()}, kv["scope"].S(), kv["name"].S(),
                                   kv["uid"].S(), kv["bootId"].S());
}

// Opens a copy of exactly len bytes on the heap, so a sanitizer sees any read past the end.
Opened OpenCopy(const KeyRing& ring, const Bytes& env, size_t len, std::string_view ctx,
                size_t max_bytes = kDefaultMaxBytes) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len ? len : 1]);
  if (len) memcpy(copy.get(), env.data(), len);
  return Open(ring, len ? copy.get() : nullptr, len, ctx, max_bytes);
}
Opened OpenCopy(const KeyRing& ring, const Bytes& env, std::string_view ctx) {
  return OpenCopy(ring, env, env.size(), ctx);
}

std::string CodeOfOpen(const KeyRing& ring, const Bytes& env, std::string_view ctx) {
  return check::CodeOf([&] { OpenCopy(ring, env, ctx); });
}

// ---- temp directories -------------------------------------------------------------------

int RmEntry(const char* path, const struct stat*, int, struct FTW*) {
  remove(path);
  return 0;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/sealed-core-test.XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + strerror(errno));
    path = tmpl;
  }
  ~TempDir() { nftw(path.c_str(), RmEntry, 16, FTW_DEPTH | FTW_PHYS); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::vector<std::string> RawNames(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool NoTempFiles(const std::string& dir) {
  for (const std::string& n : RawNames(dir)) {
    if (n[0] == '.') return false;
  }
  return true;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return static_cast<mode_t>(-1);
  return st.st_mode & 07777;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string ReadRaw(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) return "<missing>";
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  fclose(f);
  return s;
}

void WriteRaw(const std::string& path, const std::string& data, mode_t mode = 0600) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) throw std::runtime_error("open " + path + ": " + strerror(errno));
  if (write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    close(fd);
    throw std::runtime_error("write " + path);
  }
  fchmod(fd, mode);
  close(fd);
}

struct UmaskScope {
  mode_t old;
  explicit UmaskScope(mode_t m) : old(umask(m)) {}
  ~UmaskScope() { umask(old); }
};

// A ring for the file tests (the secret-keyed store vector).
std::unique_ptr<KeyRing> StoreRing() { return RingFor(V()["keys"].arr[2]); }
constexpr const char* kCtx = "store:default:test";

}  // namespace

// ===== keys ===============================================================================

TEST(keys_derive_vectors) {
  CHECK(V()["keys"].arr.size() >= 4);
  for (const Json& kv : V()["keys"].arr) {
    uint8_t key[kKeySize];
    DeriveKey(kv["ikm"].S(), kv["scope"].S(), kv["name"].S(), kv["uid"].S(), kv["bootId"].S(), key);
    CHECK_EQ(Hex(key, kKeySize), kv["keyHex"].S());
    KeyId id = ComputeKeyId(key);
    CHECK_EQ(Hex(id.data(), id.size()), kv["keyIdHex"].S());
  }
}

TEST(keys_ring_vectors) {
  for (const Json& kv : V()["keys"].arr) {
    auto ring = RingFor(kv);
    CHECK_EQ(ring->size(), size_t{1});
    CHECK_EQ(Hex(ring->key(0).bytes, kKeySize), kv["keyHex"].S());
    CHECK_EQ(Hex(ring->key(0).id.data(), kKeyIdSize), kv["keyIdHex"].S());
    // flags bit 0 iff the ring is bound to a boot id
    CHECK_EQ(int{ring->flags()}, kv["bootId"].S().empty() ? 0 : int{kFlagBootBound});
    Bytes id = FromHex(kv["keyIdHex"].S());
    CHECK_EQ(ring->Find(id.data()), 0);
  }
}

TEST(keys_ring_find_rotation) {
  const auto& ks = V()["keys"].arr;
  const Json& k0 = ks[0];
  // Same scope/name/uid as key vector 0, three ikms: current first.
  KeyRing ring({k0["ikm"].S(), ks[2]["ikm"].S(), ks[3]["ikm"].S()}, k0["scope"].S(), k0["name"].S(), k0["uid"].S(), "");
  CHECK_EQ(ring.size(), size_t{3});
  CHECK_EQ(Hex(ring.key(0).bytes, kKeySize), k0["keyHex"].S());
  for (size_t i = 0; i < ring.size(); i++) CHECK_EQ(ring.Find(ring.key(i).id.data()), static_cast<int>(i));
  uint8_t other[kKeyIdSize] = {0xde, 0xad, 0xbe, 0xef};
  CHECK_EQ(ring.Find(other), -1);
  Bytes boot_id = FromHex(ks[1]["keyIdHex"].S());  // same ikm, other boot: another key
  CHECK_EQ(ring.Find(boot_id.data()), -1);
  CHECK_EQ(int{ring.flags()}, 0);
}

TEST(keys_rejects_bad_input) {
  CHECK_CODE(KeyRing({}, "manager", "a", "0", ""), code::kInvalidArg);
  CHECK_CODE(KeyRing({""}, "manager", "a", "0", ""), code::kInvalidArg);
  uint8_t key[kKeySize];
  CHECK_CODE(DeriveKey("", "manager", "a", "0", "", key), code::kInvalidArg);
  // info = scope 0 name 0 uid 0 boot: "store" + 3 separators = 8 bytes around the name.
  CHECK_NOTHROW(DeriveKey("ikm", "store", std::string(1024 - 8, 'n'), "", "", key));
  CHECK_CODE(DeriveKey("ikm", "store", std::string(1024 - 7, 'n'), "", "", key), code::kInvalidArg);
  // A key derived with a 1024-byte info is a real HKDF output, not all zeros.
  DeriveKey("ikm", "store", std::string(1024 - 8, 'n'), "", "", key);
  CHECK(Hex(key, kKeySize) != std::string(64, '0'));
}

TEST(keys_hmac_sha256_rfc4231) {
  // RFC 4231 test cases 1 and 2 (HMAC-SHA-256).
  Bytes key1(20, 0x0b);
  const std::string msg1 = "Hi There";
  uint8_t out[kMacSize];
  HmacSha256(key1.data(), key1.size(), reinterpret_cast<const uint8_t*>(msg1.data()), msg1.size(), out);
  CHECK_EQ(Hex(out, kMacSize), std::string("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
  const std::string key2 = "Jefe", msg2 = "what do ya want for nothing?";
  HmacSha256(reinterpret_cast<const uint8_t*>(key2.data()), key2.size(), reinterpret_cast<const uint8_t*>(msg2.data()),
             msg2.size(), out);
  CHECK_EQ(Hex(out, kMacSize), std::string("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
}

TEST(keys_ring_mac_per_key_and_scope) {
  KeyRing index({"ikm-a", "ikm-b"}, "store-index", "default", "", "");
  KeyRing store({"ikm-a"}, "store", "default", "", "");
  const std::string who = "alice@example.com";
  const auto* msg = reinterpret_cast<const uint8_t*>(who.data());
  uint8_t m0[kMacSize], m1[kMacSize], direct[kMacSize], other[kMacSize];
  index.Mac(0, msg, who.size(), m0);
  index.Mac(1, msg, who.size(), m1);
  HmacSha256(index.key(0).bytes, kKeySize, msg, who.size(), direct);
  store.Mac(0, msg, who.size(), other);
  CHECK_EQ(Hex(m0, kMacSize), Hex(direct, kMacSize));
  CHECK(Hex(m0, kMacSize) != Hex(m1, kMacSize));     // one name per key while keys rotate
  CHECK(Hex(m0, kMacSize) != Hex(other, kMacSize));  // scope store-index is not the sealing key
  uint8_t empty[kMacSize];
  CHECK_NOTHROW(index.Mac(0, msg, 0, empty));
  CHECK_CODE(index.Mac(2, msg, who.size(), m0), code::kInvalidArg);
}

// ===== envelopes ==========================================================================

TEST(envelope_seal_vectors) {
  CHECK(V()["envelopes"].arr.size() >= 4);
  for (const Json& ev : V()["envelopes"].arr) {
    const Json& kv = vectors::KeyVectorFor(V(), ev["keyHex"].S());
    auto ring = RingFor(kv);
    CHECK_EQ(Hex(ring->key(0).bytes, kKeySize), ev["keyHex"].S());
    uint64_t flags = ev.Has("flags") ? ev["flags"].N() : 0;
    CHECK_EQ(uint64_t{ring->flags()}, flags);
    Bytes nonce = FromHex(ev["nonceHex"].S());
    CHECK_EQ(nonce.size(), kNonceSize);
    const std::string& pt = ev["plaintext"].S();
    Bytes env = Seal(*ring, reinterpret_cast<const uint8_t*>(pt.data()), pt.size(), ev["context"].S(),
                     ev["createdAt"].N(), ev["expiresAt"].N(), nonce.data());
    CHECK_EQ(Hex(env), ev["envelopeHex"].S());
    CHECK_EQ(env.size(), kMinEnvelope + pt.size());
  }
}

TEST(envelope_open_vectors) {
  for (const Json& ev : V()["envelopes"].arr) {
    auto ring = RingFor(vectors::KeyVectorFor(V(), ev["keyHex"].S()));
    Bytes env = FromHex(ev["envelopeHex"].S());
    Opened o = OpenCopy(*ring, env, ev["context"].S());
    CHECK_EQ(std::string(o.plaintext.begin(), o.plaintext.end()), ev["plaintext"].S());
    CHECK_EQ(o.key_index, 0);
    CHECK_EQ(o.header.created_at, ev["createdAt"].N());
    CHECK_EQ(o.header.expires_at, ev["expiresAt"].N());
    CHECK_EQ(uint64_t{o.header.flags}, ev.Has("flags") ? ev["flags"].N() : 0);
    CHECK_EQ(int{o.header.version}, 1);
    CHECK_EQ(Hex(o.header.nonce, kNonceSize), ev["nonceHex"].S());
    CHECK_EQ(Hex(o.header.key_id, kKeyIdSize), Hex(ring->key(0).id.data(), kKeyIdSize));
  }
}

TEST(envelope_random_nonce) {
  auto ring = StoreRing();
  Bytes pt = B("{\"same\":\"input\"}");
  Bytes a = Seal(*ring, pt.data(), pt.size(), kCtx, 10, 20);
  Bytes b = Seal(*ring, pt.data(), pt.size(), kCtx, 10, 20);
  CHECK(a != b);
  CHECK(Hex(a.data() + 28, kNonceSize) != Hex(b.data() + 28, kNonceSize));
  CHECK_EQ(Hex(a.data(), 28), Hex(b.data(), 28));  // same header up to the nonce
  CHECK(OpenCopy(*ring, a, kCtx).plaintext == pt);
  CHECK(OpenCopy(*ring, b, kCtx).plaintext == pt);
  // Empty plaintext and empty context round-trip too.
  Bytes e = Seal(*ring, nullptr, 0, "", 0, 0);
  CHECK_EQ(e.size(), kMinEnvelope);
  CHECK(OpenCopy(*ring, e, "").plaintext.empty());
}

TEST(envelope_bad_magic) {
  const Json& ev = V()["envelopes"].arr[0];
  auto ring = RingFor(vectors::KeyVectorFor(V(), ev["keyHex"].S()));
  Bytes good = FromHex(ev["envelopeHex"].S());
  for (int i = 0; i < 4; i++) {
    Bytes env = good;
    env[i] = 'x';
    CHECK_EQ(CodeOfOpen(*ring, env, ev["context"].S()), code::kBadMagic);
    CHECK_CODE(ParseHeader(env.data(), env.size()), code::kBadMagic);
  }
  Bytes zeros(200, 0);
  CHECK_EQ(CodeOfOpen(*ring, zeros, ev["context"].S()), code::kBadMagic);
}

TEST(envelope_bad_version) {
  const Json& ev = V()["envelopes"].arr[0];
  auto ring = RingFor(vectors::KeyVectorFor(V(), ev["keyHex"].S()));
  Bytes good = FromHex(ev["envelopeHex"].S());
  for (int v : {0, 2, 3, 0x81, 255}) {
    Bytes env = good;
    env[4] = static_cast<uint8_t>(v);
    CHECK_EQ(CodeOfOpen(*ring, env, ev["context"].S()), code::kBadVersion);
    CHECK_CODE(ParseHeader(env.data(), env.size()), code::kBadVersion);
  }
}

TEST(envelope_reserved_bits) {
  const Json& ev = V()["envelopes"].arr[0];
  auto ring = RingFor(vectors::KeyVectorFor(V(), ev["keyHex"].S()));
  Bytes good = FromHex(ev["envelopeHex"].S());
  for (int bit = 1; bit < 8; bit++) {  // flag bits other than bit 0
    Bytes env = good;
    env[5] = static_cast<uint8_t>(1u << bit);
    CHECK_EQ(CodeOfOpen(*ring, env, ev["context"].S()), code::kBadReserved);
    CHECK_CODE(ParseHeader(env.data(), env.size()), code::kBadReserved);
  }
  for (int byte : {6, 7}) {
    for (int v : {0x01, 0x80, 0xff}) {
      Bytes env = good;
      env[byte] = static_cast<uint8_t>(v);
      CHECK_EQ(CodeOfOpen(*ring, env, ev["context"].S()), code::kBadReserved);
      CHECK_CODE(ParseHeader(env.data(), env.size()), code::kBadReserved);
    }
  }
  // Flag bit 0 is allowed by the format, but it is authenticated: flipping it is tampering.
  Bytes env = good;
  env[5] = kFlagBootBound;
  CHECK_NOTHROW(ParseHeader(env.data(), env.size()));
  CHECK_EQ(CodeOfOpen(*ring, env, ev["context"].S()), code::kTampered);
}

TEST(envelope_truncated) {
  const Json& ev = V()["envelopes"].arr[0];
  auto ring = RingFor(vectors::KeyVectorFor(V(), ev["keyHex"].S()));
  Bytes good = FromHex(ev["envelopeHex"].S());
  for (size_t len = 0; len < kMinEnvelope; len++) {
    std::string got = check::CodeOf([&] { OpenCopy(*ring, good, len, ev["context"].S()); });
    CHECK_MSG(got == code::kTruncated, "length " + std::to_string(len) + " gave " + got);
  }
  // Longer but still short of the whole envelope: the tag is wrong.
  for (size_t len = kMinEnvelope; len < good.size(); len++) {
    std::string got = check::CodeOf([&] { OpenCopy(*ring, good, len, ev["context"].S()); });
    CHECK_MSG(got == code::kTampered, "length " + std::to_string(len) + " gave " + got);
  }
  // The 56-byte envelope of the empty plaintext vector is valid.
  const Json& empty = V()["envelopes"].arr[3];
  CHECK_EQ(FromHex(empty["envelopeHex"].S()).size(), kMinEnvelope);
  CHECK(OpenCopy(*ring, FromHex(empty["envelopeHex"].S()), empty["context"].S()).plaintext.empty());
}

TEST(envelope_too_large) {
  const Json& ev = V()["envelopes"].arr[0];
  auto ring = RingFor(vectors::KeyVectorFor(V(), ev["keyHex"].S()));
  Bytes good = FromHex(ev["envelopeHex"].S());
  CHECK_CODE(OpenCopy(*ring, good, good.size(), ev["context"].S(), good.size() - 1), code::kTooLarge);
  CHECK_NOTHROW(OpenCopy(*ring, good, good.size(), ev["context"].S(), good.size()));
  // Default cap 1 MiB: exactly 1 MiB opens, one byte more is refused before anything else.
  Bytes pt(kDefaultMaxBytes - kMinEnvelope, 'a');
  Bytes big = Seal(*ring, pt.data(), pt.size(), "ctx", 1, 0);
  CHECK_EQ(big.size(), kDefaultMaxBytes);
  CHECK(OpenCopy(*ring, big, "ctx").plaintext == pt);
  pt.push_back('a');
  Bytes bigger = Seal(*ring, pt.data(), pt.size(), "ctx", 1, 0);
  CHECK_EQ(CodeOfOpen(*ring, bigger, "ctx"), code::kTooLarge);
  Bytes junk(kDefaultMaxBytes + 1, 0);
  CHECK_EQ(CodeOfOpen(*ring, junk, "ctx"), code::kTooLarge);
}

TEST(envelope_unknown_key) {
  const Json& ev = V()["envelopes"].arr[0];
  Bytes good = FromHex(ev["envelopeHex"].S());
  auto other = StoreRing();  // a different key
  CHECK_EQ(CodeOfOpen(*other, good, ev["context"].S()), code::kUnknownKey);
  // Same ikm but bound to a boot: another key, so unknown too.
  auto boot = RingFor(V()["keys"].arr[1]);
  CHECK_EQ(CodeOfOpen(*boot, good, ev["context"].S()), code::kUnknownKey);
}

TEST(envelope_wrong_context) {
  for (const Json& ev : V()["envelopes"].arr) {
    auto ring = RingFor(vectors::KeyVectorFor(V(), ev["keyHex"].S()));
    Bytes env = FromHex(ev["envelopeHex"].S());
    const std::string& ctx = ev["context"].S();
    for (const std::string& bad :
         {std::string(""), ctx + "x", ctx.substr(0, ctx.size() - 1), ctx + std::string(1, '\0'),
          std::string("manager:other"), "store:default:" + std::string(64, '0')}) {
      CHECK_EQ(CodeOfOpen(*ring, env, bad), code::kTampered);
    }
  }
}

TEST(envelope_every_bit_flip) {
  size_t tried = 0, accepted = 0;
  for (const Json& ev : V()["envelopes"].arr) {
    auto ring = RingFor(vectors::KeyVectorFor(V(), ev["keyHex"].S()));
    const Bytes good = FromHex(ev["envelopeHex"].S());
    const std::string& ctx = ev["context"].S();
    for (size_t byte = 0; byte < good.size(); byte++) {
      for (int bit = 0; bit < 8; bit++) {
        Bytes env = good;
        env[byte] ^= static_cast<uint8_t>(1u << bit);
        const char* want;
        if (byte < 4) want = code::kBadMagic;
        else if (byte == 4) want = code::kBadVersion;
        else if (byte == 5 && bit != 0) want = code::kBadReserved;
        else if (byte == 6 || byte == 7) want = code::kBadReserved;
        else if (byte >= 8 && byte < 12) want = code::kUnknownKey;
        else want = code::kTampered;  // flag bit 0, times, nonce, ciphertext, tag
        std::string got = CodeOfOpen(*ring, env, ctx);
        tried++;
        if (got == "<no exception>") accepted++;
        CHECK_MSG(got == want,
                  "byte " + std::to_string(byte) + " bit " + std::to_string(bit) + ": want " + want + ", got " + got);
      }
    }
  }
  std::printf("  bit flips: %zu variants tried, %zu accepted\n", tried, accepted);
  CHECK_EQ(accepted, size_t{0});
}

TEST(envelope_rotation) {
  const auto& ks = V()["keys"].arr;
  const std::string a = ks[2]["ikm"].S();
  const std::string b = "another secret, at least thirty-two bytes long";
  KeyRing ra({a}, "store", "default", "", "");
  KeyRing rb({b}, "store", "default", "", "");
  KeyRing rab({a, b}, "store", "default", "", "");
  KeyRing rba({b, a}, "store", "default", "", "");
  Bytes pt = B("{\"x\":1}");
  Bytes ea = Seal(ra, pt.data(), pt.size(), kCtx, 1, 0);
  Bytes eb = Seal(rb, pt.data(), pt.size(), kCtx, 1, 0);
  Opened o = OpenCopy(rab, ea, kCtx);
  CHECK(o.plaintext == pt);
  CHECK_EQ(o.key_index, 0);
  o = OpenCopy(rab, eb, kCtx);
  CHECK(o.plaintext == pt);
  CHECK_EQ(o.key_index, 1);
  CHECK_EQ(OpenCopy(rba, ea, kCtx).key_index, 1);
  CHECK_EQ(OpenCopy(rba, eb, kCtx).key_index, 0);
  // The ring seals with its first (current) key.
  Bytes eab = Seal(rab, pt.data(), pt.size(), kCtx, 1, 0);
  CHECK_EQ(Hex(eab.data() + 8, kKeyIdSize), Hex(ra.key(0).id.data(), kKeyIdSize));
  CHECK_EQ(OpenCopy(ra, eab, kCtx).key_index, 0);
  CHECK_EQ(CodeOfOpen(rb, eab, kCtx), code::kUnknownKey);
  CHECK_EQ(CodeOfOpen(ra, eb, kCtx), code::kUnknownKey);
}

// ===== header =============================================================================

TEST(header_big_endian_times) {
  uint8_t h[kHeaderSize] = {'S', 'E', 'A', 'L', 1, 1, 0, 0, 0xa1, 0xb2, 0xc3, 0xd4};
  for (int i = 0; i < 8; i++) {
    h[12 + i] = static_cast<uint8_t>(0x01 + i);  // 0x0102030405060708
    h[20 + i] = static_cast<uint8_t>(0xf1 + i);  // 0xf1f2f3f4f5f6f7f8
  }
  for (int i = 0; i < 12; i++) h[28 + i] = static_cast<uint8_t>(0x40 + i);
  Header hd = ParseHeader(h, sizeof h);
  CHECK_EQ(hd.created_at, uint64_t{0x0102030405060708});
  CHECK_EQ(hd.expires_at, uint64_t{0xf1f2f3f4f5f6f7f8});
  CHECK_EQ(int{hd.version}, 1);
  CHECK_EQ(int{hd.flags}, 1);
  CHECK_EQ(Hex(hd.key_id, kKeyIdSize), std::string("a1b2c3d4"));
  CHECK_EQ(Hex(hd.nonce, kNonceSize), std::string("404142434445464748494a4b"));
  // The header peek needs 40 bytes, a whole envelope 56.
  CHECK_CODE(ParseHeader(h, sizeof h, kMinEnvelope), code::kTruncated);
  for (size_t len = 0; len < kHeaderSize; len++) {
    std::unique_ptr<uint8_t[]> copy(new uint8_t[len + 1]);
    memcpy(copy.get(), h, len);
    CHECK_CODE(ParseHeader(copy.get(), len), code::kTruncated);
  }
  // A vector's times come back as the vector states them.
  const Json& ev = V()["envelopes"].arr[0];
  Bytes env = FromHex(ev["envelopeHex"].S());
  Header vh = ParseHeader(env.data(), kHeaderSize);
  CHECK_EQ(vh.created_at, ev["createdAt"].N());
  CHECK_EQ(vh.expires_at, ev["expiresAt"].N());
}

TEST(header_expiry_semantics) {
  Header h{};
  h.expires_at = 0;  // never
  CHECK(!h.ExpiredAt(0));
  CHECK(!h.ExpiredAt(UINT64_MAX));
  h.expires_at = 1000;
  CHECK(!h.ExpiredAt(0));
  CHECK(!h.ExpiredAt(999));
  CHECK(h.ExpiredAt(1000));  // expires_at <= now is expired
  CHECK(h.ExpiredAt(1001));
  CHECK(h.ExpiredAt(UINT64_MAX));
  h.expires_at = 1;
  CHECK(!h.ExpiredAt(0));
  CHECK(h.ExpiredAt(1));
}

// ===== machine id =========================================================================

TEST(machine_id_normalize) {
  const std::string id = "3d1219c7c4c5404aaa1f6d2a48adfda4";
  std::string out;
  CHECK(NormalizeLinuxMachineId(id, &out));
  CHECK_EQ(out, id);
  out.clear();
  CHECK(NormalizeLinuxMachineId(id + "\n", &out));
  CHECK_EQ(out, id);
  out.clear();
  CHECK(NormalizeLinuxMachineId(" \t" + id + " \r\n", &out));
  CHECK_EQ(out, id);
  out = "unchanged";
  CHECK(!NormalizeLinuxMachineId("", &out));
  CHECK(!NormalizeLinuxMachineId("\n", &out));
  CHECK(!NormalizeLinuxMachineId("uninitialized\n", &out));
  CHECK(!NormalizeLinuxMachineId(id.substr(0, 31), &out));
  CHECK(!NormalizeLinuxMachineId(id + "0", &out));
  CHECK(!NormalizeLinuxMachineId(id.substr(0, 16) + " " + id.substr(17), &out));
  CHECK(!NormalizeLinuxMachineId("g" + id.substr(1), &out));
  CHECK(!NormalizeLinuxMachineId(id.substr(0, 16) + std::string(1, '\0') + id.substr(17), &out));
  CHECK_EQ(out, std::string("unchanged"));  // untouched on refusal
}

TEST(machine_id_read_this_machine) {
  std::string id = ReadMachineId();
  CHECK_EQ(id.size(), size_t{32});
  CHECK(std::all_of(id.begin(), id.end(), [](char c) { return isxdigit(static_cast<unsigned char>(c)); }));
  std::string raw = ReadRaw("/etc/machine-id"), norm;
  if (!NormalizeLinuxMachineId(raw, &norm)) NormalizeLinuxMachineId(ReadRaw("/var/lib/dbus/machine-id"), &norm);
  CHECK_EQ(id, norm);
  CHECK_EQ(CurrentUid(), std::to_string(geteuid()));
  std::string boot = ReadBootId();
  CHECK_EQ(boot.size(), size_t{36});  // a UUID, newline trimmed
}

// ===== private dir ========================================================================

TEST(pdir_created_dir_mode_0700_any_umask) {
  TempDir t;
  {
    UmaskScope u(0);
    PrivateDir d(t / "a/b/c", true);
    CHECK_EQ(ModeOf(t / "a/b/c"), mode_t{0700});
    CHECK_EQ(ModeOf(t / "a"), mode_t{0700});  // created parents are private too
    CHECK_EQ(ModeOf(t / "a/b"), mode_t{0700});
  }
  {
    UmaskScope u(0277);  // would leave 0500
    PrivateDir d(t / "strict", true);
    CHECK_EQ(ModeOf(t / "strict"), mode_t{0700});
  }
  // Opening an existing private dir without create works and changes nothing.
  PrivateDir again(t / "a/b/c", false);
  CHECK_EQ(ModeOf(t / "a/b/c"), mode_t{0700});
  CHECK_CODE(PrivateDir(t / "missing", false), code::kIo);
  WriteRaw(t / "plainfile", "x");
  CHECK_CODE(PrivateDir(t / "plainfile", false), code::kUnsafePath);
  CHECK_CODE(PrivateDir(t / "plainfile", true), code::kUnsafePath);
}

TEST(pdir_file_mode_0600_any_umask) {
  TempDir t;
  PrivateDir d(t.path, false);
  Bytes data = B("payload");
  {
    UmaskScope u(0);
    d.WriteAtomic("f0", data.data(), data.size());
  }
  CHECK_EQ(ModeOf(t / "f0"), mode_t{0600});
  {
    UmaskScope u(0277);
    d.WriteAtomic("f1", data.data(), data.size());
  }
  CHECK_EQ(ModeOf(t / "f1"), mode_t{0600});
  CHECK_EQ(ReadRaw(t / "f0"), std::string("payload"));
  // Overwrite keeps 0600 even if someone loosened the old file.
  chmod((t / "f0").c_str(), 0644);
  {
    UmaskScope u(0);
    d.WriteAtomic("f0", data.data(), 3);
  }
  CHECK_EQ(ModeOf(t / "f0"), mode_t{0600});
  CHECK_EQ(ReadRaw(t / "f0"), std::string("pay"));
}

TEST(pdir_write_existing_only) {
  TempDir t;
  PrivateDir d(t.path, false);
  Bytes data = B("payload");
  // Nothing there: nothing written, no temp file left.
  CHECK(!d.WriteAtomic("f", data.data(), data.size(), true));
  CHECK(access((t / "f").c_str(), F_OK) != 0);
  CHECK(d.WriteAtomic("f", data.data(), data.size()));
  CHECK(d.WriteAtomic("f", data.data(), 3, true));
  CHECK_EQ(ReadRaw(t / "f"), std::string("pay"));
  DIR* dir = opendir(t.path.c_str());
  int entries = 0;
  while (struct dirent* e = readdir(dir)) entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(dir);
  CHECK_EQ(entries, 1);
}

TEST(pdir_symlinked_dir_refused) {
  TempDir t;
  mkdir((t / "real").c_str(), 0700);
  CHECK_EQ(symlink((t / "real").c_str(), (t / "link").c_str()), 0);
  CHECK_CODE(PrivateDir(t / "link", false), code::kUnsafePath);
  CHECK_CODE(PrivateDir(t / "link", true), code::kUnsafePath);
  CHECK_CODE(PrivateDir(t / "link/", false), code::kUnsafePath);
  CHECK_CODE(PrivateDir(t / "link//", true), code::kUnsafePath);
  CHECK(RawNames(t / "real").empty());
  // A dangling symlink is refused too, and create does not make its target.
  CHECK_EQ(symlink((t / "nowhere").c_str(), (t / "dangling").c_str()), 0);
  CHECK_CODE(PrivateDir(t / "dangling", true), code::kUnsafePath);
  CHECK(!Exists(t / "nowhere"));
}

// ----- the path walk: parents others could swap -------------------------------------

namespace {
// The message of the sealed::Error that fn throws ("" when none).
template <typename Fn>
std::string ErrorMessage(Fn fn) {
  try {
    fn();
  } catch (const sealed::Error& e) {
    return e.what();
  }
  return "";
}
bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST(pdir_walk_shared_parent_not_sticky_refused) {
  TempDir t;
  // App A's private directory, and a world-writable, non-sticky directory another user controls.
  mkdir((t / "appA").c_str(), 0700);
  mkdir((t / "appA/sessions").c_str(), 0700);
  WriteRaw(t / "appA/sessions/admin", "A's session");
  mkdir((t / "shared").c_str(), 0700);
  chmod((t / "shared").c_str(), 0777);
  // The attack: app B's dir goes through shared/b, which the other user made a symlink to A.
  CHECK_EQ(symlink((t / "appA").c_str(), (t / "shared/b").c_str()), 0);
  CHECK_CODE(PrivateDir(t / "shared/b/sessions", false), code::kUnsafePath);
  CHECK_CODE(PrivateDir(t / "shared/b/sessions", true), code::kUnsafePath);
  std::string msg = ErrorMessage([&] { PrivateDir(t / "shared/b/sessions", false); });
  CHECK_MSG(Contains(msg, "directory " + t / "shared" + " on the path of") && Contains(msg, "not sticky"), msg);
  // A real directory there is refused as well: it could be swapped at any time.
  unlink((t / "shared/b").c_str());
  mkdir((t / "shared/b").c_str(), 0700);
  CHECK_CODE(PrivateDir(t / "shared/b/new", true), code::kUnsafePath);
  CHECK(!Exists(t / "shared/b/new"));  // nothing created past the refused parent
  // Group-writable counts as writable by others.
  chmod((t / "shared").c_str(), 0770);
  CHECK_CODE(PrivateDir(t / "shared/b", false), code::kUnsafePath);
  chmod((t / "shared").c_str(), 0755);
  CHECK_NOTHROW(PrivateDir(t / "shared/b", false));
  CHECK_EQ(ReadRaw(t / "appA/sessions/admin"), std::string("A's session"));
}

TEST(pdir_walk_sticky_parent_allowed) {
  TempDir t;
  mkdir((t / "tmp").c_str(), 0700);
  chmod((t / "tmp").c_str(), 01777);  // like /tmp
  CHECK_NOTHROW(PrivateDir(t / "tmp/mine/sessions", true));
  CHECK_EQ(ModeOf(t / "tmp/mine"), mode_t{0700});
  // A symlink of ours in a sticky directory is followed.
  mkdir((t / "real").c_str(), 0700);
  CHECK_EQ(symlink((t / "real").c_str(), (t / "tmp/alias").c_str()), 0);
  CHECK_NOTHROW(PrivateDir(t / "tmp/alias/sessions", true));
  CHECK(Exists(t / "real/sessions"));
  // The real /tmp stays usable.
  TempDir in_tmp;
  CHECK_NOTHROW(PrivateDir(in_tmp / "sessions", true));
  if (geteuid() != 0) {
    std::printf("  skipped foreign-owner half: chown needs root (euid %u)\n", static_cast<unsigned>(geteuid()));
    return;
  }
  // Another user's symlink or directory in a sticky shared directory is not trusted.
  CHECK_EQ(symlink((t / "real").c_str(), (t / "tmp/theirs").c_str()), 0);
  CHECK_EQ(lchown((t / "tmp/theirs").c_str(), 65534, 65534), 0);
  std::string msg = ErrorMessage([&] { PrivateDir(t / "tmp/theirs/sessions", false); });
  CHECK_MSG(Contains(msg, "symlink " + t / "tmp/theirs") && Contains(msg, "uid 65534"), msg);
  mkdir((t / "tmp/theirdir").c_str(), 0700);
  CHECK_EQ(chown((t / "tmp/theirdir").c_str(), 65534, 65534), 0);
  CHECK_CODE(PrivateDir(t / "tmp/theirdir/x", true), code::kUnsafePath);
  // A parent owned by another user (not root) is writable by them: refused unless sticky.
  mkdir((t / "home").c_str(), 0755);
  mkdir((t / "home/app").c_str(), 0700);
  CHECK_EQ(chown((t / "home").c_str(), 65534, 65534), 0);
  CHECK_CODE(PrivateDir(t / "home/app", false), code::kUnsafePath);
}

TEST(pdir_walk_private_parents) {
  TempDir t;
  // Symlinks in parents only we can write are followed; the last component still may not be one.
  mkdir((t / "real").c_str(), 0700);
  CHECK_EQ(symlink("real", (t / "rel-alias").c_str()), 0);  // relative target
  CHECK_NOTHROW(PrivateDir(t / "rel-alias/a/b", true));
  CHECK_EQ(ModeOf(t / "real/a"), mode_t{0700});
  CHECK_EQ(ModeOf(t / "real/a/b"), mode_t{0700});
  CHECK_CODE(PrivateDir(t / "rel-alias", false), code::kUnsafePath);
  // ".." and "." go where the walk is.
  CHECK_NOTHROW(PrivateDir(t / "real/a/../a/./b", false));
  // A loop of symlinks ends in ELOOP, not a hang.
  CHECK_EQ(symlink("loop2", (t / "loop1").c_str()), 0);
  CHECK_EQ(symlink("loop1", (t / "loop2").c_str()), 0);
  CHECK_CODE(PrivateDir(t / "loop1/x", true), code::kIo);
  // A file where a parent should be.
  WriteRaw(t / "file", "x");
  CHECK_CODE(PrivateDir(t / "file/x", true), code::kIo);
  // A relative path is taken against the current directory.
  char old[4096];
  CHECK(getcwd(old, sizeof old) != nullptr);
  CHECK_EQ(chdir(t.path.c_str()), 0);
  {
    PrivateDir rel("made/here", true);
    CHECK_EQ(rel.path(), std::string("made/here"));
  }
  CHECK_EQ(chdir(old), 0);
  CHECK_EQ(ModeOf(t / "made/here"), mode_t{0700});
}

TEST(pdir_group_or_world_writable_refused) {
  TempDir t;
  for (mode_t m : {mode_t{0770}, mode_t{0720}, mode_t{0702}, mode_t{0777}}) {
    std::string p = t / ("d" + std::to_string(m));
    mkdir(p.c_str(), 0700);
    chmod(p.c_str(), m);
    CHECK_CODE(PrivateDir(p, false), code::kUnsafePath);
    CHECK_CODE(PrivateDir(p, true), code::kUnsafePath);
    CHECK_EQ(ModeOf(p), m);  // not "fixed" behind the caller's back
  }
  // Read-only for group is fine (only writability lets others plant files).
  mkdir((t / "ro").c_str(), 0700);
  chmod((t / "ro").c_str(), 0750);
  CHECK_NOTHROW(PrivateDir(t / "ro", false));
  // Loosened after opening: writes re-check, and nothing is written. Reads go through the held
  // descriptor without a re-check: only the owner or root can change the mode.
  mkdir((t / "later").c_str(), 0700);
  PrivateDir d(t / "later", false);
  chmod((t / "later").c_str(), 0770);
  Bytes data = B("x");
  CHECK_CODE(d.Check(), code::kUnsafePath);
  CHECK_CODE(d.WriteAtomic("s", data.data(), data.size()), code::kUnsafePath);
  CHECK(!d.Read("s", 100).has_value());
  CHECK(RawNames(t / "later").empty());
}

TEST(pdir_foreign_owner_refused) {
  if (geteuid() != 0) {
    std::printf("  skipped: chown to nobody needs root (euid %u)\n", static_cast<unsigned>(geteuid()));
    return;
  }
  TempDir t;
  mkdir((t / "theirs").c_str(), 0700);
  CHECK_EQ(chown((t / "theirs").c_str(), 65534, 65534), 0);
  CHECK_CODE(PrivateDir(t / "theirs", false), code::kUnsafePath);
  CHECK_CODE(PrivateDir(t / "theirs", true), code::kUnsafePath);
  CHECK(RawNames(t / "theirs").empty());
  // A file of another user inside our dir is refused on read, left in place.
  PrivateDir d(t.path, false);
  WriteRaw(t / "foreign", "x");
  CHECK_EQ(chown((t / "foreign").c_str(), 65534, 65534), 0);
  CHECK_CODE(d.Read("foreign", 100), code::kUnsafePath);
  auto ring = StoreRing();
  CHECK_CODE(d.OpenFile(*ring, "foreign", kCtx, kDefaultMaxBytes, 0, kRemoveInvalid | kRemoveExpired),
             code::kUnsafePath);
  CHECK(Exists(t / "foreign"));
}

TEST(pdir_symlinked_file_refused) {
  TempDir t;
  TempDir outside;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{\"a\":1}");
  d.SealToFile(*ring, "real", pt.data(), pt.size(), kCtx, 1, 0);
  WriteRaw(outside / "secret", "do not touch");
  CHECK_EQ(symlink((t / "real").c_str(), (t / "s1").c_str()), 0);
  CHECK_EQ(symlink((outside / "secret").c_str(), (t / "s2").c_str()), 0);
  for (const char* name : {"s1", "s2"}) {
    CHECK_CODE(d.Read(name, kDefaultMaxBytes), code::kUnsafePath);
    CHECK_CODE(d.OpenFile(*ring, name, kCtx, kDefaultMaxBytes, 0, 0), code::kUnsafePath);
    CHECK_CODE(d.Peek(name), code::kUnsafePath);
  }
  // Writing over a symlink replaces the link itself; its target is never written.
  d.SealToFile(*ring, "s2", pt.data(), pt.size(), kCtx, 1, 0);
  CHECK_EQ(ReadRaw(outside / "secret"), std::string("do not touch"));
  struct stat st;
  CHECK(lstat((t / "s2").c_str(), &st) == 0 && S_ISREG(st.st_mode));
  CHECK(d.OpenFile(*ring, "real", kCtx, kDefaultMaxBytes, 0, 0).status == OpenFileResult::kOk);
  CHECK(NoTempFiles(t.path));
}

TEST(pdir_fifo_refused_without_hanging) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  CHECK_EQ(mkfifo((t / "pipe").c_str(), 0600), 0);
  alarm(20);  // a hang kills the test binary (SIGALRM) instead of blocking CI
  CHECK_CODE(d.Read("pipe", kDefaultMaxBytes), code::kUnsafePath);
  CHECK_CODE(d.OpenFile(*ring, "pipe", kCtx, kDefaultMaxBytes, 0, kRemoveInvalid), code::kUnsafePath);
  CHECK_CODE(d.Peek("pipe"), code::kUnsafePath);
  SweepStats s = d.Sweep(UINT64_MAX);
  CHECK_EQ(s.removed, uint64_t{0});
  // A FIFO in place of the lock file is refused as well.
  CHECK_EQ(mkfifo((t / "x.lock").c_str(), 0600), 0);
  CHECK_CODE(d.Lock("x"), code::kUnsafePath);
  alarm(0);
  CHECK(Exists(t / "pipe"));
}

TEST(pdir_directory_in_place_of_file) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{\"old\":true}");
  d.SealToFile(*ring, "good", pt.data(), pt.size(), kCtx, 1, 0);
  std::string good_before = ReadRaw(t / "good");
  mkdir((t / "sess").c_str(), 0700);
  WriteRaw(t / "sess/keep", "inner");
  Bytes np = B("{\"new\":true}");
  CHECK_CODE(d.SealToFile(*ring, "sess", np.data(), np.size(), kCtx, 2, 0), code::kIo);
  CHECK_CODE(d.WriteAtomic("sess", np.data(), np.size()), code::kIo);
  struct stat st;
  CHECK(lstat((t / "sess").c_str(), &st) == 0 && S_ISDIR(st.st_mode));
  CHECK_EQ(ReadRaw(t / "sess/keep"), std::string("inner"));
  CHECK_EQ(ReadRaw(t / "good"), good_before);
  CHECK(d.OpenFile(*ring, "good", kCtx, kDefaultMaxBytes, 0, 0).opened.plaintext == pt);
  CHECK(NoTempFiles(t.path));
  CHECK_EQ(Join(RawNames(t.path)), std::string("good,sess"));
  // Reading a directory is refused as not a regular file.
  CHECK_CODE(d.Read("sess", 100), code::kUnsafePath);
}

TEST(pdir_no_temp_file_left) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{}");
  for (int i = 0; i < 20; i++) d.SealToFile(*ring, "s", pt.data(), pt.size(), kCtx, 1, 0);
  CHECK_EQ(Join(RawNames(t.path)), std::string("s"));
  mkdir((t / "blocked").c_str(), 0700);
  WriteRaw(t / "blocked/x", "x");
  for (int i = 0; i < 5; i++) CHECK_CODE(d.SealToFile(*ring, "blocked", pt.data(), pt.size(), kCtx, 1, 0), code::kIo);
  CHECK(NoTempFiles(t.path));
  CHECK_EQ(Join(RawNames(t.path)), std::string("blocked,s"));
}

TEST(pdir_seal_open_roundtrip) {
  TempDir t;
  PrivateDir d(t / "sessions", true);
  auto ring = StoreRing();
  Bytes pt = B("{\"userId\":\"u1\",\"data\":{\"k\":[1,2,3]}}");
  d.SealToFile(*ring, "session.enc", pt.data(), pt.size(), kCtx, 1000, 5000);
  OpenFileResult r = d.OpenFile(*ring, "session.enc", kCtx, kDefaultMaxBytes, 2000, kRemoveExpired | kRemoveInvalid);
  CHECK(r.status == OpenFileResult::kOk);
  CHECK(r.opened.plaintext == pt);
  CHECK_EQ(r.opened.header.created_at, uint64_t{1000});
  CHECK_EQ(r.opened.header.expires_at, uint64_t{5000});
  CHECK_EQ(r.opened.key_index, 0);
  auto raw = d.Read("session.enc", kDefaultMaxBytes);
  CHECK(raw && raw->size() == kMinEnvelope + pt.size());
  CHECK(raw && OpenCopy(*ring, *raw, kCtx).plaintext == pt);
  auto peek = d.Peek("session.enc");
  CHECK(peek && peek->expires_at == 5000);
  // Replace the record: the new one is what opens.
  Bytes pt2 = B("{\"userId\":\"u2\"}");
  d.SealToFile(*ring, "session.enc", pt2.data(), pt2.size(), kCtx, 1100, 6000);
  CHECK(d.OpenFile(*ring, "session.enc", kCtx, kDefaultMaxBytes, 2000, 0).opened.plaintext == pt2);
  // Missing file: kMissing, no throw; Read/Peek give nullopt.
  CHECK(d.OpenFile(*ring, "nope", kCtx, kDefaultMaxBytes, 0, 0).status == OpenFileResult::kMissing);
  CHECK(!d.Read("nope", 10).has_value());
  CHECK(!d.Peek("nope").has_value());
  // Wrong context (a file renamed to another session's name) does not open.
  CHECK_CODE(d.OpenFile(*ring, "session.enc", "store:default:other", kDefaultMaxBytes, 0, 0), code::kTampered);
  CHECK(Exists(t / "sessions/session.enc"));
  // Size cap on files.
  CHECK_CODE(d.Read("session.enc", 10), code::kTooLarge);
  CHECK_CODE(d.OpenFile(*ring, "session.enc", kCtx, 10, 0, 0), code::kTooLarge);
  // Remove.
  CHECK(d.Remove("session.enc"));
  CHECK(!d.Remove("session.enc"));
  CHECK(RawNames(t / "sessions").empty());
}

TEST(pdir_expired_removed) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{}");
  d.SealToFile(*ring, "e", pt.data(), pt.size(), kCtx, 1, 1000);
  OpenFileResult r = d.OpenFile(*ring, "e", kCtx, kDefaultMaxBytes, 1000, 0);
  CHECK(r.status == OpenFileResult::kExpired);
  CHECK(r.opened.plaintext.empty());
  CHECK_EQ(r.opened.header.expires_at, uint64_t{1000});
  CHECK(Exists(t / "e"));  // kept without kRemoveExpired
  r = d.OpenFile(*ring, "e", kCtx, kDefaultMaxBytes, 1000, kRemoveExpired);
  CHECK(r.status == OpenFileResult::kExpired);
  CHECK(!Exists(t / "e"));
  // Not yet expired, and never expiring.
  d.SealToFile(*ring, "live", pt.data(), pt.size(), kCtx, 1, 1000);
  CHECK(d.OpenFile(*ring, "live", kCtx, kDefaultMaxBytes, 999, kRemoveExpired).status == OpenFileResult::kOk);
  d.SealToFile(*ring, "never", pt.data(), pt.size(), kCtx, 1, 0);
  CHECK(d.OpenFile(*ring, "never", kCtx, kDefaultMaxBytes, UINT64_MAX, kRemoveExpired).status == OpenFileResult::kOk);
  // The removal took the name's lock (a lock file, as every writer leaves).
  CHECK_EQ(Join(RawNames(t.path)), std::string("e.lock,live,never"));
}

TEST(pdir_invalid_removed) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes junk = B("this is not an envelope, but it is long enough to have a header and a tag......");
  d.WriteAtomic("junk", junk.data(), junk.size());
  CHECK_CODE(d.OpenFile(*ring, "junk", kCtx, kDefaultMaxBytes, 0, 0), code::kBadMagic);
  CHECK(Exists(t / "junk"));
  CHECK_CODE(d.OpenFile(*ring, "junk", kCtx, kDefaultMaxBytes, 0, kRemoveInvalid), code::kBadMagic);
  CHECK(!Exists(t / "junk"));
  // Tampered.
  Bytes pt = B("{}");
  d.SealToFile(*ring, "t", pt.data(), pt.size(), kCtx, 1, 0);
  auto raw = d.Read("t", kDefaultMaxBytes);
  CHECK(raw.has_value());
  if (raw) {
    (*raw)[raw->size() - 1] ^= 1;
    d.WriteAtomic("t", raw->data(), raw->size());
  }
  CHECK_CODE(d.OpenFile(*ring, "t", kCtx, kDefaultMaxBytes, 0, kRemoveExpired), code::kTampered);
  CHECK(Exists(t / "t"));
  CHECK_CODE(d.OpenFile(*ring, "t", kCtx, kDefaultMaxBytes, 0, kRemoveInvalid), code::kTampered);
  CHECK(!Exists(t / "t"));
  // Truncated and unknown-key files.
  d.WriteAtomic("short", junk.data(), 10);
  CHECK_CODE(d.OpenFile(*ring, "short", kCtx, kDefaultMaxBytes, 0, kRemoveInvalid), code::kTruncated);
  CHECK(!Exists(t / "short"));
  KeyRing other({"some other secret of thirty-two bytes!!"}, "store", "default", "", "");
  d.SealToFile(other, "foreignkey", pt.data(), pt.size(), kCtx, 1, 0);
  CHECK_CODE(d.OpenFile(*ring, "foreignkey", kCtx, kDefaultMaxBytes, 0, kRemoveInvalid), code::kUnknownKey);
  CHECK(!Exists(t / "foreignkey"));
  // Only the lock files of the removals are left.
  CHECK_EQ(Join(RawNames(t.path)), std::string("foreignkey.lock,junk.lock,short.lock,t.lock"));
}

TEST(pdir_check_name) {
  for (const std::string& bad :
       {std::string(""), std::string("."), std::string(".."), std::string("a/b"), std::string("/abs"),
        std::string("../up"), std::string(".hidden"), std::string("x.lock"), std::string(".lock"),
        std::string(256, 'n'), std::string("a\0b", 3), std::string(1, '\0')}) {
    CHECK_CODE(PrivateDir::CheckName(bad), code::kInvalidArg);
  }
  for (const std::string& ok : {std::string("session.enc"), std::string(255, 'n'), std::string("a.lockx"),
                                std::string("x.lock.enc"), std::string("a..b"), std::string("医生")}) {
    CHECK_NOTHROW(PrivateDir::CheckName(ok));
  }
  // Every file operation checks the name first.
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{}");
  CHECK_CODE(d.WriteAtomic("../escape", pt.data(), pt.size()), code::kInvalidArg);
  CHECK_CODE(d.SealToFile(*ring, "a/b", pt.data(), pt.size(), kCtx, 1, 0), code::kInvalidArg);
  CHECK_CODE(d.OpenFile(*ring, "..", kCtx, kDefaultMaxBytes, 0, 0), code::kInvalidArg);
  CHECK_CODE(d.Read(".", 10), code::kInvalidArg);
  CHECK_CODE(d.Peek("x.lock"), code::kInvalidArg);
  CHECK_CODE(d.Remove(".hidden"), code::kInvalidArg);
  CHECK_CODE(d.Lock(""), code::kInvalidArg);
  CHECK(RawNames(t.path).empty());
  CHECK(!Exists(t.path + "/../escape"));
}

TEST(pdir_sweep) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{}");
  d.SealToFile(*ring, "expired1", pt.data(), pt.size(), kCtx, 1, 1000);
  d.SealToFile(*ring, "expired2", pt.data(), pt.size(), kCtx, 1, 5000);  // expires_at == now
  d.SealToFile(*ring, "live", pt.data(), pt.size(), kCtx, 1, 5001);
  d.SealToFile(*ring, "never", pt.data(), pt.size(), kCtx, 1, 0);
  // A header is all the sweep reads: an expired envelope of an unknown key goes too.
  KeyRing other({"some other secret of thirty-two bytes!!"}, "store", "default", "", "");
  d.SealToFile(other, "expired_other_key", pt.data(), pt.size(), kCtx, 1, 10);
  Bytes junk = B("not an envelope at all, though long enough for forty bytes of header");
  d.WriteAtomic("junk", junk.data(), junk.size());
  d.WriteAtomic("short", junk.data(), 12);
  // Written without an expiry, their mtime is now: set it to the past so the sweep reads them
  // (a file whose mtime is ahead is passed by on its metadata alone).
  struct timespec past[2] = {{1, 0}, {1, 0}};
  CHECK_EQ(utimensat(AT_FDCWD, (t / "junk").c_str(), past, 0), 0);
  CHECK_EQ(utimensat(AT_FDCWD, (t / "short").c_str(), past, 0), 0);
  { auto lock = d.Lock("live"); }
  // Temp files nobody holds a lock on: their writer is gone, whatever their age.
  WriteRaw(t / ".old.0123456789abcdef.tmp", "stale");
  WriteRaw(t / ".new.0123456789abcdef.tmp", "fresh");
  WriteRaw(t / ".dotfile", "not a temp");
  mkdir((t / "subdir").c_str(), 0700);

  SweepStats s = d.Sweep(5000);
  CHECK_EQ(s.removed, uint64_t{3});
  CHECK_EQ(s.scanned, uint64_t{7});  // 5 envelopes, junk, short
  CHECK_EQ(s.skipped, uint64_t{2});  // junk, short
  CHECK_EQ(Join(RawNames(t.path)),
           std::string(".dotfile,expired1.lock,expired2.lock,expired_other_key.lock,junk,live,live.lock,"
                       "never,short,subdir"));
  // A second sweep finds nothing more to remove.
  CHECK_EQ(d.Sweep(5000).removed, uint64_t{0});
  // Later everything with an expiry goes; the never-expiring envelope stays.
  CHECK_EQ(d.Sweep(UINT64_MAX).removed, uint64_t{1});
  CHECK(Exists(t / "never") && !Exists(t / "live") && Exists(t / "live.lock"));
}

TEST(pdir_sweep_collects_the_names_it_keeps_by_prefix) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{}");
  d.SealToFile(*ring, "index-never", pt.data(), pt.size(), kCtx, 1, 0);
  d.SealToFile(*ring, "index-expired", pt.data(), pt.size(), kCtx, 1, 1000);
  d.SealToFile(*ring, "index-forged", pt.data(), pt.size(), kCtx, 1, 9000);
  d.SealToFile(*ring, "session", pt.data(), pt.size(), kCtx, 1, 9000);
  Bytes junk = B("not an envelope at all, though long enough for forty bytes of header");
  d.WriteAtomic("index-junk", junk.data(), junk.size());
  // Past mtimes: the header is read; it keeps index-forged (live) and skips index-junk.
  struct timespec past[2] = {{1, 0}, {1, 0}};
  CHECK_EQ(utimensat(AT_FDCWD, (t / "index-forged").c_str(), past, 0), 0);
  CHECK_EQ(utimensat(AT_FDCWD, (t / "index-junk").c_str(), past, 0), 0);
  SweepStats s = d.Sweep(5000, "index-");
  CHECK_EQ(s.removed, uint64_t{1});
  std::vector<std::string> got = s.collected;
  std::sort(got.begin(), got.end());
  CHECK_EQ(Join(got), std::string("index-forged,index-never"));
  CHECK(d.Sweep(5000).collected.empty());  // no prefix, nothing collected
}

TEST(pdir_lock_name_of) {
  const std::string hex(64, 'a');
  CHECK_EQ(PrivateDir::LockNameOf("ab" + hex.substr(2)), std::string("stripe-ab"));
  CHECK_EQ(PrivateDir::LockNameOf("index-0f" + hex.substr(2)), std::string("stripe-0f"));
  CHECK_EQ(PrivateDir::LockNameOf("session.enc"), std::string("session.enc"));
  CHECK_EQ(PrivateDir::LockNameOf("AB" + hex.substr(2)), "AB" + hex.substr(2));  // not lowercase hex
  CHECK_EQ(PrivateDir::LockNameOf(hex + "0"), hex + "0");                        // 65 chars
  CHECK_EQ(PrivateDir::LockNameOf("index-" + hex.substr(1)), "index-" + hex.substr(1));
}

TEST(pdir_try_lock) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto held = d.TryLock("s");
  CHECK(held != nullptr);
  CHECK(d.TryLock("s") == nullptr);  // another descriptor, even in this process: busy
  held->Release();
  CHECK(d.TryLock("s") != nullptr);
  CHECK_EQ(symlink((t / "elsewhere").c_str(), (t / "y.lock").c_str()), 0);
  CHECK_CODE(d.TryLock("y"), code::kUnsafePath);
}

// A writer holds a file's lock while it replaces it: a read or a sweep that finds the old file
// expired (or invalid) leaves it then, and removes it once the lock is free.
TEST(pdir_removal_leaves_a_file_whose_lock_is_held) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{}");
  const std::string name = "ab" + std::string(62, '0');
  d.SealToFile(*ring, name, pt.data(), pt.size(), kCtx, 1, 1000);
  Bytes junk = B("this is not an envelope, but it is long enough to have a header and a tag......");
  d.WriteAtomic("session.enc", junk.data(), junk.size());
  {
    auto writer = d.Lock("stripe-ab");
    auto manager_writer = d.Lock("session.enc");
    CHECK(d.OpenFile(*ring, name, kCtx, kDefaultMaxBytes, 2000, kRemoveExpired).status == OpenFileResult::kExpired);
    CHECK(Exists(t / name));
    CHECK_EQ(d.Sweep(2000).removed, uint64_t{0});
    CHECK(Exists(t / name));
    CHECK_CODE(d.OpenFile(*ring, "session.enc", kCtx, kDefaultMaxBytes, 0, kRemoveInvalid), code::kBadMagic);
    CHECK(Exists(t / "session.enc"));
    // A caller that holds the lock itself says so, and the removal goes ahead.
    CHECK(d.OpenFile(*ring, name, kCtx, kDefaultMaxBytes, 2000, kRemoveExpired | kLockHeld).status ==
          OpenFileResult::kExpired);
    CHECK(!Exists(t / name));
  }
  d.SealToFile(*ring, name, pt.data(), pt.size(), kCtx, 1, 1000);
  CHECK_EQ(d.Sweep(2000).removed, uint64_t{1});
  CHECK(!Exists(t / name));
  CHECK_CODE(d.OpenFile(*ring, "session.enc", kCtx, kDefaultMaxBytes, 0, kRemoveInvalid), code::kBadMagic);
  CHECK(!Exists(t / "session.enc"));
}

// The race itself: a writer that puts a new file under the name between a removal's identity
// check and its unlink (test_hooks::before_unlink runs it there). Writers take the name's lock
// to replace it; this one cannot wait for it on the remover's own thread, so when it finds the
// lock busy it writes once the removal has returned, as a waiting writer would.
TEST(pdir_removal_spares_a_file_written_after_its_check) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes old_pt = B("{\"old\":1}"), new_pt = B("{\"new\":1}");
  const std::string name = "cd" + std::string(62, '1');
  bool waited = false;
  const auto writer = [&](const std::string& n) {
    auto lock = d.TryLock(PrivateDir::LockNameOf(n));
    if (!lock) {
      waited = true;
      return;
    }
    d.SealToFile(*ring, n, new_pt.data(), new_pt.size(), kCtx, 1, 0);
  };
  const auto write_if_waited = [&] {
    if (waited) d.SealToFile(*ring, name, new_pt.data(), new_pt.size(), kCtx, 1, 0);
    waited = false;
  };
  const auto new_one_is_there = [&] {
    OpenFileResult r = d.OpenFile(*ring, name, kCtx, kDefaultMaxBytes, 5000, 0);
    return r.status == OpenFileResult::kOk && r.opened.plaintext == new_pt;
  };
  // A read that found the old file expired.
  d.SealToFile(*ring, name, old_pt.data(), old_pt.size(), kCtx, 1, 1000);
  test_hooks::before_unlink = writer;
  d.OpenFile(*ring, name, kCtx, kDefaultMaxBytes, 5000, kRemoveExpired);
  test_hooks::before_unlink = nullptr;
  write_if_waited();
  CHECK(new_one_is_there());
  // A sweep that found it expired.
  d.SealToFile(*ring, name, old_pt.data(), old_pt.size(), kCtx, 1, 1000);
  test_hooks::before_unlink = writer;
  d.Sweep(5000);
  test_hooks::before_unlink = nullptr;
  write_if_waited();
  CHECK(new_one_is_there());
}

TEST(pdir_stale_temps_go_live_ones_stay) {
  TempDir t;
  WriteRaw(t / ".dead.0123456789abcdef.tmp", "left by a crash");
  WriteRaw(t / ".live.0123456789abcdef.tmp", "being written");
  WriteRaw(t / ".notatemp", "kept");
  // A live writer: holds flock on its temp file (another open file description conflicts).
  int live = open((t / ".live.0123456789abcdef.tmp").c_str(), O_RDONLY);
  CHECK(live >= 0);
  CHECK_EQ(flock(live, LOCK_EX | LOCK_NB), 0);
  PrivateDir d(t.path, false);  // opening removes the dead one
  CHECK(!Exists(t / ".dead.0123456789abcdef.tmp"));
  CHECK(Exists(t / ".live.0123456789abcdef.tmp"));
  CHECK(Exists(t / ".notatemp"));
  WriteRaw(t / ".dead2.0123456789abcdef.tmp", "another");
  CHECK_EQ(d.RemoveStaleTemps(), uint64_t{1});
  d.Sweep(0);
  CHECK(Exists(t / ".live.0123456789abcdef.tmp"));
  close(live);  // the writer dies
  d.Sweep(0);
  CHECK(!Exists(t / ".live.0123456789abcdef.tmp"));
  // Our own writes leave no temp file behind, and the written file is whole.
  Bytes data = B("payload");
  CHECK(d.WriteAtomic("f", data.data(), data.size()));
  CHECK_EQ(Join(RawNames(t.path)), std::string(".notatemp,f"));
}

TEST(pdir_open_without_removing_stale_temps) {
  TempDir t;
  WriteRaw(t / ".dead.0123456789abcdef.tmp", "left by a crash");
  {
    PrivateDir look(t.path, false, false);  // read-only inspection (the CLI's status, doctor)
    CHECK(Exists(t / ".dead.0123456789abcdef.tmp"));
  }
  PrivateDir d(t.path, false);
  CHECK(!Exists(t / ".dead.0123456789abcdef.tmp"));
}

TEST(cas_record_version) {
  CHECK_EQ(RecordVersion("{\"id\":\"x\",\"data\":{},\"version\":42}"), uint64_t{42});
  CHECK_EQ(RecordVersion("{\"version\":7}"), uint64_t{0});  // only after a comma, as we write it
  CHECK_EQ(RecordVersion("{\"a\":1,\"version\":9007199254740991}"), uint64_t{9007199254740991});
  CHECK_EQ(RecordVersion("{\"a\":1,\"version\":9007199254740992}"), uint64_t{0});  // above 2^53 - 1
  CHECK_EQ(RecordVersion("{\"a\":1,\"version\":012}"), uint64_t{0});
  CHECK_EQ(RecordVersion("{\"a\":1,\"other\":12}"), uint64_t{0});
  // A 0.1 record (no version) ends in "}}": version 1. A nested "version" is not the record's.
  CHECK_EQ(RecordVersion("{\"id\":\"x\",\"data\":{\"version\":5}}"), uint64_t{1});
  CHECK_EQ(RecordVersion(""), uint64_t{0});
  CHECK_EQ(RecordVersion("}"), uint64_t{0});
}

TEST(cas_seal_modes) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  auto seal = [&](const std::string& json, CasMode mode, uint64_t expected, uint64_t now = 1000, uint64_t expires = 0) {
    Bytes pt = B(json);
    CasWrite w;
    w.name = "s";
    w.stripe = "stripe-ab";
    w.plaintext = pt.data();
    w.size = pt.size();
    w.context = kCtx;
    w.created_at = 1;
    w.expires_at = expires;
    w.now = now;
    w.mode = mode;
    w.expected = expected;
    return CasSeal(d, *ring, w);
  };
  auto stored = [&]() {
    auto r = d.OpenFile(*ring, "s", kCtx, kDefaultMaxBytes, 0, 0);
    return std::string(r.opened.plaintext.begin(), r.opened.plaintext.end());
  };
  CHECK(seal("{\"n\":0,\"version\":5}", CasMode::kVersion, 5).outcome == CasResult::kMissing);
  CHECK(!Exists(t / "s"));
  CHECK(seal("{\"n\":1,\"version\":5}", CasMode::kAbsent, 0).outcome == CasResult::kWritten);
  CHECK(seal("{\"n\":2,\"version\":9}", CasMode::kAbsent, 0).outcome == CasResult::kExists);
  CHECK(seal("{\"n\":3,\"version\":6}", CasMode::kVersion, 5).outcome == CasResult::kWritten);
  CHECK_EQ(stored(), std::string("{\"n\":3,\"version\":6}"));
  {
    CasResult c = seal("{\"n\":4,\"version\":6}", CasMode::kVersion, 5);
    CHECK(c.outcome == CasResult::kConflict);
    CHECK_EQ(c.current, std::string("{\"n\":3,\"version\":6}"));
    CHECK(c.lock != nullptr);  // still held for the caller's rebuilt write
    CHECK_EQ(stored(), std::string("{\"n\":3,\"version\":6}"));
  }
  CHECK(seal("{\"n\":5,\"version\":1}", CasMode::kAny, 0).outcome == CasResult::kWritten);
  CHECK_EQ(stored(), std::string("{\"n\":5,\"version\":1}"));
  // An expired record is no record: missing for a version write (and removed), absent for an insert.
  CHECK(seal("{\"n\":6,\"version\":2}", CasMode::kAny, 0, 1000, 2000).outcome == CasResult::kWritten);
  CHECK(seal("{\"n\":7,\"version\":3}", CasMode::kVersion, 2, 3000).outcome == CasResult::kMissing);
  CHECK(!Exists(t / "s"));
  CHECK(seal("{\"n\":8,\"version\":4}", CasMode::kAny, 0, 1000, 2000).outcome == CasResult::kWritten);
  CHECK(seal("{\"n\":9,\"version\":9}", CasMode::kAbsent, 0, 3000).outcome == CasResult::kWritten);
  // An unreadable record (flipped bit) counts as none and is reported.
  std::string raw = ReadRaw(t / "s");
  raw[raw.size() - 1] ^= 1;
  WriteRaw(t / "s", raw);
  CasResult u = seal("{\"n\":10,\"version\":1}", CasMode::kVersion, 9);
  CHECK(u.outcome == CasResult::kMissing);
  CHECK_EQ(u.unreadable, std::string(code::kTampered));
  CHECK(seal("{\"n\":11,\"version\":1}", CasMode::kAbsent, 0).outcome == CasResult::kWritten);
  CHECK_EQ(stored(), std::string("{\"n\":11,\"version\":1}"));
  CHECK(Exists(t / "stripe-ab.lock"));
}

TEST(pdir_lock_excludes_other_process) {
  TempDir t;
  PrivateDir d(t.path, false);
  const std::string lock_path = t / "s.lock";
  // Child: try a non-blocking exclusive flock; exit 0 if it was refused, 1 if it got it.
  auto child_refused = [&]() -> int {
    fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(lock_path.c_str(), O_RDWR);
      if (fd < 0) _exit(2);
      int rc = flock(fd, LOCK_EX | LOCK_NB);
      _exit(rc != 0 && errno == EWOULDBLOCK ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
  };
  auto lock = d.Lock("s");
  CHECK(lock != nullptr);
  CHECK_EQ(ModeOf(lock_path), mode_t{0600});
  CHECK_EQ(child_refused(), 0);  // held: the other process is refused
  lock->Release();
  CHECK_EQ(child_refused(), 1);  // released: the other process gets it
  lock->Release();               // idempotent
  {
    auto again = d.Lock("s");
    CHECK_EQ(child_refused(), 0);
  }
  CHECK_EQ(child_refused(), 1);  // destructor releases
  // A symlink in place of the lock file is refused.
  CHECK_EQ(symlink((t / "elsewhere").c_str(), (t / "y.lock").c_str()), 0);
  CHECK_CODE(d.Lock("y"), code::kUnsafePath);
  CHECK(!Exists(t / "elsewhere"));
}

TEST(pdir_list) {
  TempDir t;
  PrivateDir d(t.path, false);
  auto ring = StoreRing();
  Bytes pt = B("{}");
  d.SealToFile(*ring, "b", pt.data(), pt.size(), kCtx, 1, 0);
  d.SealToFile(*ring, "a", pt.data(), pt.size(), kCtx, 1, 0);
  { auto lock = d.Lock("a"); }
  WriteRaw(t / ".a.0011223344556677.tmp", "temp");
  mkdir((t / "subdir").c_str(), 0700);
  CHECK_EQ(symlink((t / "a").c_str(), (t / "link").c_str()), 0);
  std::vector<std::string> names = d.List();
  std::sort(names.begin(), names.end());
  CHECK_EQ(Join(names), std::string("a,b"));
}

// ==========================================================================================

int main(int argc, char** argv) {
  if (argc > 1 && argv[1][0] != '\0') g_vectors_path = argv[1];
  std::string filter = argc > 2 ? argv[2] : "";
  try {
    V();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cannot load vectors: %s\n", e.what());
    std::printf("0 passed, 1 failed\n");
    return 1;
  }
  std::printf("vectors: %s\n", g_vectors_path.c_str());
  return check::RunAll(filter);
}
