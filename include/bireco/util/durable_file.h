// Crash-safe file output: every writer of a checkpoint or model folder goes through here, so a
// full disk (ENOSPC), a file-size limit (EFBIG) or an I/O error (EIO) becomes one bireco::Error
// naming the file and the OS reason, and a folder is only ever seen complete or not at all.
//
// Output policy (what bireco writes, and where):
//   - checkpoints and `bireco export` folders: written to `<dir>.tmp`, every file and folder
//     fsynced, renamed to `<dir>`, then the parent folder fsynced (install_directory below);
//   - single files (resolved_config.json, safetensors, embeddings): `<file>.tmp`, fsync, rename;
//   - bireco writes only under checkpoint.dir, an explicit --out, an eval cache folder, and the
//     `<data file>.idx.bin` line-index cache beside a data file (logged once when written).
//     Paths in configs are the user's choice: a checkpoint.dir with `..` is followed, and the
//     absolute output folder is logged when a stage starts.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace bireco::util {

// A file written with write(2): every byte or an Error "<file>: write failed: <strerror>".
// finish() fsyncs and closes it (either can fail too: NFS and full disks report late); a
// DurableFile destroyed before finish() just closes (the caller removes the partial file).
class DurableFile {
 public:
  explicit DurableFile(std::filesystem::path file);  // created or truncated, mode 0644
  ~DurableFile();
  DurableFile(const DurableFile&) = delete;
  DurableFile& operator=(const DurableFile&) = delete;

  void write(const void* data, size_t bytes);
  void write(std::string_view text) { write(text.data(), text.size()); }
  void finish();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// The whole of `text` to `file` through a DurableFile (not atomic: for files inside a
// temporary folder that is renamed as a whole).
void write_file_durably(const std::filesystem::path& file, std::string_view text);

// `write` fills a DurableFile at `file.tmp`, which is then fsynced and renamed over `file`: a
// reader never sees half a file. The temporary file is removed on error.
void write_file_atomically(const std::filesystem::path& file,
                           const std::function<void(DurableFile&)>& write);

// The same for a file whose whole content is `text`.
void write_file_atomically(const std::filesystem::path& file, std::string_view text);

// Copies `from` to `to` (replacing it) through a DurableFile.
void copy_file_durably(const std::filesystem::path& from, const std::filesystem::path& to);

// fsync of a folder, so that the files created or renamed in it survive a power cut.
void sync_directory(const std::filesystem::path& dir);

// fsync of every file and folder under `dir` and of `dir` itself.
void sync_tree(const std::filesystem::path& dir);

// Makes the finished folder `temp` appear as `target`: sync_tree(temp), an older `target`
// renamed aside, temp renamed to target, the parent fsynced, the older one removed. A crash
// leaves either the old or the new folder under `target` (or, between the two renames, the old
// one under `<target>.old-<pid>`).
void install_directory(const std::filesystem::path& temp, const std::filesystem::path& target);

// `path` absolute, `..` and symlinks resolved as far as it exists, no trailing separator: for
// asking whether two output folders are the same or one lies inside the other.
std::filesystem::path comparable_path(const std::filesystem::path& path);

// Removes `path` (file or folder) ignoring errors: for clean-up after a failed write.
void remove_quietly(const std::filesystem::path& path) noexcept;

}  // namespace bireco::util
