// Rank-aware logging: only rank 0 speaks unless every rank is asked to.
//
// spdlog stays inside log.cpp. Debian's spdlog is built against fmt 9, while LibTorch's wheel
// ships fmt 12 headers under the same names (<fmt/core.h>) on the include path; a file that
// saw both would compile spdlog against the wrong fmt. So callers pass the pieces of a
// message, which are streamed (operator<<) into one line here.
#pragma once

#include <sstream>
#include <string>

namespace bireco::log {

struct Options {
  std::string level = "info";  // trace | debug | info | warn | error | off
  int rank = 0;
  bool all_ranks = false;  // every rank logs, each line prefixed with [rank N]
};

// Configures the default logger. Safe to call again (e.g. once the rank is known).
void init(const Options& options);

// The rank given to the last init(); 0 before any.
int rank();

void write_info(const std::string& line);
void write_warn(const std::string& line);

// log::info("saved ", dir, " at step ", step): the pieces streamed into one line.
template <typename... Pieces>
void info(const Pieces&... pieces) {
  std::ostringstream line;
  (line << ... << pieces);
  write_info(line.str());
}

template <typename... Pieces>
void warn(const Pieces&... pieces) {
  std::ostringstream line;
  (line << ... << pieces);
  write_warn(line.str());
}

}  // namespace bireco::log
