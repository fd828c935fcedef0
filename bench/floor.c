/*
 * The floor for a sealed-session file read: what a tight C loop costs on this machine with
 * the same OpenSSL 3.0 line, doing only the unavoidable work of one read:
 *   open(O_RDONLY|O_CLOEXEC), read (up to the cap), close, parse nothing but the nonce,
 *   AES-256-GCM decrypt with AAD = header || context, check the tag.
 * The cipher is fetched once and one EVP_CIPHER_CTX keeps the key schedule; only the IV is
 * reset per read (the cheapest legal use of the EVP API). Built by bench/run.mjs at run time
 * against Node's bundled OpenSSL headers (/usr/include/node) and the system libcrypto.
 *
 * usage: floor <file> <key-hex-64> <context> <reads> <rounds>
 * prints one JSON line per round: {"ns":<ns per read>,"p50":..,"p99":..,"openssl":".."}
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static unsigned char buf[1 << 20];
static unsigned char plain[1 << 20];

/* One read; returns the plaintext length, or -1 on any failure. */
static int read_once(const char* file, EVP_CIPHER_CTX* ctx, const char* context, int context_len) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n < 56) return -1;
  int len = 0, ct_len = (int)n - 56;
  if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, buf + 28) != 1) return -1;
  if (EVP_DecryptUpdate(ctx, NULL, &len, buf, 40) != 1) return -1;
  if (EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char*)context, context_len) != 1) return -1;
  if (EVP_DecryptUpdate(ctx, plain, &len, buf + 40, ct_len) != 1) return -1;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, buf + n - 16) != 1) return -1;
  if (EVP_DecryptFinal_ex(ctx, plain + len, &len) != 1) return -1;
  return ct_len;
}

int main(int argc, char** argv) {
  if (argc != 6 || strlen(argv[2]) != 64) {
    fprintf(stderr, "usage: floor <file> <key-hex-64> <context> <reads> <rounds>\n");
    return 2;
  }
  const char* file = argv[1];
  unsigned char key[32];
  for (int i = 0; i < 32; i++) {
    int hi = hexval(argv[2][2 * i]), lo = hexval(argv[2][2 * i + 1]);
    if (hi < 0 || lo < 0) return 2;
    key[i] = (unsigned char)(hi * 16 + lo);
  }
  const char* context = argv[3];
  int context_len = (int)strlen(context);
  long reads = atol(argv[4]);
  int rounds = atoi(argv[5]);
  if (reads < 1 || rounds < 1) return 2;

  EVP_CIPHER* cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (!cipher || !ctx || EVP_DecryptInit_ex(ctx, cipher, NULL, key, NULL) != 1) {
    fprintf(stderr, "floor: OpenSSL setup failed\n");
    return 1;
  }
  /* Warm-up, and a correctness check: the tag must verify. */
  for (int i = 0; i < 20000; i++) {
    if (read_once(file, ctx, context, context_len) < 0) {
      fprintf(stderr, "floor: read or authentication failed\n");
      return 1;
    }
  }
  uint64_t* lat = malloc(sizeof(uint64_t) * (size_t)reads);
  if (!lat) return 1;
  for (int r = 0; r < rounds; r++) {
    /* Throughput from the untimed-per-op loop, latency from a second, per-op-timed pass. */
    uint64_t t0 = now_ns();
    for (long i = 0; i < reads; i++) {
      if (read_once(file, ctx, context, context_len) < 0) return 1;
    }
    uint64_t total = now_ns() - t0;
    for (long i = 0; i < reads; i++) {
      uint64_t a = now_ns();
      if (read_once(file, ctx, context, context_len) < 0) return 1;
      lat[i] = now_ns() - a;
    }
    qsort(lat, (size_t)reads, sizeof *lat, cmp_u64);
    printf("{\"ns\":%.1f,\"p50\":%llu,\"p99\":%llu,\"openssl\":\"%s\"}\n", (double)total / (double)reads,
           (unsigned long long)lat[reads / 2], (unsigned long long)lat[(reads * 99) / 100],
           OpenSSL_version(OPENSSL_VERSION));
    fflush(stdout);
  }
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(cipher);
  free(lat);
  return 0;
}
