// Helpers of the multi-process dist tests: free ports, the worker binary, timed commands.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "test_support.h"

namespace bireco::test {

// A TCP port nobody listens on now: bind port 0 and ask the kernel which one it gave.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t length = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline std::string dist_worker() { return BIRECO_DIST_WORKER; }

// Runs `command` under coreutils' timeout (a test never hangs) and measures it.
struct TimedResult {
  CommandResult result;
  double seconds = 0;
};
inline TimedResult run_timed(const std::string& command, int limit_s = 60) {
  const auto start = std::chrono::steady_clock::now();
  TimedResult r;
  r.result = run_command("timeout -k 5 " + std::to_string(limit_s) + " " + command);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

// `bireco launch` of `nproc` local workers on a fresh port.
inline std::string launch_command(int nproc, const std::string& worker_args) {
  return bireco_binary().string() + " launch --nproc-per-node " + std::to_string(nproc) +
         " --master-port " + std::to_string(free_port()) + " -- " + worker_args;
}

}  // namespace bireco::test
