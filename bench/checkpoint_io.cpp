// What a checkpoint's manifest costs: XXH64 over a ~100 MB file (page-cached, as right after
// a save) against writing that file durably (write + fsync) and against a plain read(2) of it.
//   bench_checkpoint_io [--mb 100] [--dir /tmp]
#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bireco/util/durable_file.h"
#include "bireco/util/xxhash64.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  size_t mb = 100;
  fs::path dir = fs::temp_directory_path();
  std::string cmd = argv[0];
  for (int i = 1; i + 1 < argc; i += 2) {
    cmd += std::string(" ") + argv[i] + " " + argv[i + 1];
    if (std::strcmp(argv[i], "--mb") == 0) mb = std::stoul(argv[i + 1]);
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
  }
  const size_t bytes = mb << 20;
  std::vector<char> data(bytes);
  for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<char>((i * 2654435761u) >> 13);
  const fs::path file = dir / ("bench_checkpoint_io." + std::to_string(::getpid()));
  auto timed = [](auto&& body) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double write_s = timed([&] {
    bireco::util::DurableFile out(file);
    out.write(data.data(), data.size());
    out.finish();
  });
  uint64_t sink = 0;
  const double read_s = timed([&] {
    const int fd = ::open(file.c_str(), O_RDONLY);
    std::vector<char> buffer(1 << 20);
    ssize_t n;
    while ((n = ::read(fd, buffer.data(), buffer.size())) > 0)
      sink += static_cast<unsigned char>(buffer[n - 1]);
    ::close(fd);
  });
  uint64_t sum = 0;
  const double hash_s = timed([&] { sum = bireco::util::xxhash64_file(file); });
  const double mem_s = timed([&] { sum ^= bireco::util::xxhash64(data.data(), data.size()); });
  fs::remove(file);

  utsname u{};
  ::uname(&u);
  std::printf("bench_checkpoint_io  host %s (%s, %ld cores)\ncommand: %s\n", u.nodename, u.machine,
              ::sysconf(_SC_NPROCESSORS_ONLN), cmd.c_str());
  std::printf("%zu MiB file in %s\n", mb, dir.string().c_str());
  std::printf("%-36s %9s %9s\n", "step", "seconds", "MB/s");
  const double mbytes = static_cast<double>(bytes) / 1e6;
  std::printf("%-36s %9.3f %9.0f\n", "write + fsync (DurableFile)", write_s, mbytes / write_s);
  std::printf("%-36s %9.3f %9.0f\n", "read(2) of the cached file (ref.)", read_s, mbytes / read_s);
  std::printf("%-36s %9.3f %9.0f\n", "xxhash64_file (mmap, cached)", hash_s, mbytes / hash_s);
  std::printf("%-36s %9.3f %9.0f\n", "xxhash64 of the buffer in memory", mem_s, mbytes / mem_s);
  std::printf("checksum / durable write time: %.2f   (sink %llu %llu)\n", hash_s / write_s,
              static_cast<unsigned long long>(sink & 1), static_cast<unsigned long long>(sum & 1));
  return 0;
}
