// A scoped RLIMIT_FSIZE for disk-full tests: writes past `bytes` fail with EFBIG (SIGXFSZ is
// ignored meanwhile, or it would kill the process). Scoped in-process rather than in a forked
// child because LibTorch's thread pools are not fork-safe; the soft limit is restored after.
#pragma once

#include <signal.h>
#include <sys/resource.h>

namespace bireco::test {

class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  sighandler_t old_handler_ = SIG_DFL;
};

}  // namespace bireco::test
