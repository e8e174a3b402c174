#include "bireco/util/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "bireco/util/error.h"

namespace bireco::log {
namespace {
int g_rank = 0;

spdlog::level::level_enum parse_level(const std::string& name) {
  auto level = spdlog::level::from_str(name);
  // from_str returns `off` for anything it does not know; only "off" itself means off.
  if (level == spdlog::level::off && name != "off") {
    throw Error("unknown log level '" + name +
                "' (expected trace, debug, info, warn, error or off)");
  }
  return level;
}

}  // namespace

void write_info(const std::string& line) { spdlog::info(line); }
void write_warn(const std::string& line) { spdlog::warn(line); }

void init(const Options& options) {
  g_rank = options.rank;
  auto logger = std::make_shared<spdlog::logger>(
      "bireco", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  // Ranks other than 0 stay quiet but still report warnings and errors: a failure on rank 3
  // must never be invisible.
  const bool speaks = options.rank == 0 || options.all_ranks;
  logger->set_level(speaks ? parse_level(options.level) : spdlog::level::warn);
  const std::string rank_tag = (options.all_ranks || options.rank != 0)
                                   ? "[rank " + std::to_string(options.rank) + "] "
                                   : "";
  logger->set_pattern("%Y-%m-%d %H:%M:%S %^%l%$ " + rank_tag + "%v");
  spdlog::set_default_logger(logger);
}

int rank() { return g_rank; }

}  // namespace bireco::log
