// The main of a fuzz target in the normal (gcc) build: runs every file given
// on the command line, or found (recursively) in a folder given, through
// LLVMFuzzerTestOneInput once, in name order. The replay ctests run each
// target's seed corpus this way, so the targets keep compiling and the seeds
// (crash reproducers included) keep passing. libFuzzer brings its own main
// in the fuzz build (tests/fuzz/run.sh).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (const auto& entry : fs::recursive_directory_iterator(arg)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else if (fs::is_regular_file(arg, ec)) {
      files.push_back(arg);
    } else {
      std::fprintf(stderr, "replay: no such file or folder: %s\n", argv[i]);
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s FILE_OR_FOLDER... (no input found)\n", argv[0]);
    return 2;
  }
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    const std::string s = bytes.str();
    // An exact-size heap copy, so a sanitizer build catches reads past the end.
    std::unique_ptr<uint8_t[]> data(new uint8_t[s.size()]);
    std::copy(s.begin(), s.end(), data.get());
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", f.c_str(), s.size());
    const auto start = std::chrono::steady_clock::now();
    LLVMFuzzerTestOneInput(data.get(), s.size());
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    std::fprintf(stderr, "replay: %lld us\n", static_cast<long long>(us));
  }
  std::printf("replayed %zu inputs\n", files.size());
  return 0;
}
