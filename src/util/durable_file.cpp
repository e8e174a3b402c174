// write(2)/fsync(2) with errors that name the file; see durable_file.h for the policy.
#include "bireco/util/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bireco/util/error.h"

namespace bireco::util {
namespace fs = std::filesystem;
namespace {

std::string os_error(const fs::path& path, const char* what) {
  return path.string() + ": " + what + ": " + std::strerror(errno);
}

void fsync_path(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw Error(os_error(path, "cannot open for fsync"));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) throw Error(os_error(path, "fsync failed"));
}

}  // namespace

DurableFile::DurableFile(fs::path file) : path_(std::move(file)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(os_error(path_, "cannot create"));
}

DurableFile::~DurableFile() {
  if (fd_ >= 0) ::close(fd_);
}

void DurableFile::write(const void* data, size_t bytes) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(os_error(path_, "write failed"));
    if (n == 0) {  // not expected for regular files; avoid spinning
      errno = EIO;
      throw Error(os_error(path_, "write failed"));
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void DurableFile::finish() {
  if (::fsync(fd_) != 0) throw Error(os_error(path_, "fsync failed"));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw Error(os_error(path_, "close failed"));
}

void write_file_durably(const fs::path& file, std::string_view text) {
  DurableFile out(file);
  out.write(text);
  out.finish();
}

void write_file_atomically(const fs::path& file, const std::function<void(DurableFile&)>& write) {
  const fs::path temp = file.string() + ".tmp";
  try {
    DurableFile out(temp);
    write(out);
    out.finish();
  } catch (...) {
    remove_quietly(temp);
    throw;
  }
  std::error_code ec;
  fs::rename(temp, file, ec);
  if (ec) {
    remove_quietly(temp);
    throw Error("cannot rename " + temp.string() + " to " + file.string() + ": " + ec.message());
  }
}

void write_file_atomically(const fs::path& file, std::string_view text) {
  write_file_atomically(file, [&](DurableFile& out) { out.write(text); });
}

void copy_file_durably(const fs::path& from, const fs::path& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) throw Error(os_error(from, "cannot open"));
  try {
    DurableFile out(to);
    char buffer[1 << 16];
    for (;;) {
      const ssize_t n = ::read(in, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error(os_error(from, "read failed"));
      if (n == 0) break;
      out.write(buffer, static_cast<size_t>(n));
    }
    out.finish();
  } catch (...) {
    ::close(in);
    throw;
  }
  ::close(in);
}

void sync_directory(const fs::path& dir) { fsync_path(dir, O_RDONLY | O_DIRECTORY); }

void sync_tree(const fs::path& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_symlink()) continue;
    if (entry.is_directory())
      sync_directory(entry.path());
    else if (entry.is_regular_file())
      fsync_path(entry.path(), O_RDONLY);  // writers fsync already; this covers any other file
  }
  sync_directory(dir);
}

void install_directory(const fs::path& temp, const fs::path& target) {
  sync_tree(temp);
  std::error_code ec;
  const fs::path old = target.string() + ".old-" + std::to_string(::getpid());
  const bool replacing = fs::exists(target);
  if (replacing) {
    fs::rename(target, old, ec);
    if (ec)
      throw Error("cannot rename " + target.string() + " to " + old.string() + ": " + ec.message());
  }
  fs::rename(temp, target, ec);
  if (ec) {
    std::error_code ignored;
    if (replacing) fs::rename(old, target, ignored);  // put the old one back
    throw Error("cannot rename " + temp.string() + " to " + target.string() + ": " + ec.message());
  }
  const fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  sync_directory(parent);
  if (replacing) {
    fs::remove_all(old, ec);
    if (ec) throw Error("cannot remove " + old.string() + ": " + ec.message());
  }
}

fs::path comparable_path(const fs::path& path) {
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(fs::absolute(path), ec);
  const fs::path normal = (ec ? fs::absolute(path) : canonical).lexically_normal();
  return normal.has_filename() ? normal : normal.parent_path();  // "a/b/" -> "a/b"
}

void remove_quietly(const fs::path& path) noexcept {
  std::error_code ec;
  fs::remove_all(path, ec);
}

}  // namespace bireco::util
