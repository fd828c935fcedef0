// A main() for builds without libFuzzer: runs the fuzz target once on each file named on the
// command line (a directory is read entry by entry), so the seed corpus is replayed under
// gcc's sanitizers and valgrind too. Prints "replay: N inputs".
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static int RunFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return 1;
  }
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // An exact-size heap copy (a vector may be empty with a null data()).
  std::vector<uint8_t> exact(buf);
  LLVMFuzzerTestOneInput(exact.data(), exact.size());
  return 0;
}

int main(int argc, char** argv) {
  int inputs = 0, errors = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: no such input %s\n", argv[i]);
      errors++;
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      DIR* d = opendir(argv[i]);
      if (!d) {
        errors++;
        continue;
      }
      while (struct dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        errors += RunFile(std::string(argv[i]) + "/" + e->d_name);
        inputs++;
      }
      closedir(d);
    } else {
      errors += RunFile(argv[i]);
      inputs++;
    }
  }
  printf("replay: %d inputs, %d errors\n", inputs, errors);
  return errors == 0 && inputs > 0 ? 0 : 1;
}
