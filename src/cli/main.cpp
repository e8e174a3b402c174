// `bireco <command>`: parses the command line, runs one subcommand, and turns every failure
// into one line on stderr and a non-zero exit status (never a stack trace for user mistakes).
#include <c10/util/Exception.h>

#include <csignal>
#include <cstdio>
#include <new>

#include "bireco/cli/command.h"
#include "bireco/util/error.h"
#include "bireco/util/log.h"

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

int main(int argc, char** argv) {
  using namespace bireco;
  // A file-size limit (ulimit -f) would kill bireco mid-save with SIGXFSZ; ignored, the write
  // fails with EFBIG instead and becomes an Error naming the file (util/durable_file.h).
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"bireco: train decoder-only LLMs into text embedders (bidirectional "
               "reconstruction + contrastive learning)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("bireco ") + BIRECO_VERSION);
  std::string log_level = "info";
  bool log_all_ranks = false;
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  app.add_flag("--log-all-ranks", log_all_ranks, "every rank logs, not only rank 0");

  const std::vector<cli::Command> commands = {
      cli::add_train(app),    cli::add_embed(app),  cli::add_eval(app),
      cli::add_forward(app),  cli::add_tokenize(app), cli::add_export(app),
      cli::add_info(app),     cli::add_launch(app), cli::add_config(app)};

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    log::Options options;
    options.level = log_level;
    options.all_ranks = log_all_ranks;
    if (const char* rank = std::getenv("RANK")) options.rank = std::atoi(rank);
    log::init(options);
    for (const auto& command : commands) {
      if (command.app->parsed()) return command.run();
    }
    return cli::kExitError;
  } catch (const NotAvailable& e) {
    std::fprintf(stderr, "bireco: %s\n", e.what());
    return cli::kExitNotAvailable;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return cli::kExitError;
  } catch (const c10::Error& e) {
    // A LibTorch check failed: a bug in bireco or an input we did not validate. Show the
    // message, not the C++ backtrace.
    std::fprintf(stderr, "error (LibTorch): %s\n", first_line(e.what_without_backtrace()).c_str());
    return cli::kExitError;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return cli::kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", first_line(e.what()).c_str());
    return cli::kExitError;
  }
}
