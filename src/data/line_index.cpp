// Line indexing with a validated, cached offset table (see line_index.h).
#include "bireco/data/line_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "bireco/util/error.h"
#include "bireco/util/log.h"

namespace bireco::data {
namespace {

// Bumped whenever the on-disk layout below changes.
constexpr char kMagic[8] = {'B', 'R', 'C', 'O', 'I', 'D', 'X', '1'};
constexpr size_t kReadChunk = 1 << 20;

struct FileStamp {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

FileStamp stamp_of(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    throw Error(file.string() + ": cannot open (" + std::strerror(errno) + ")");
  }
  return {static_cast<uint64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

// FNV-1a: a stable hash of the validator key, so a cache made for another format is rebuilt.
uint64_t fnv1a(std::string_view text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return h;
}

bool is_blank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

// Header of `<file>.idx.bin`, followed by the first skipped message and the entries.
struct CacheHeader {
  char magic[8];
  uint64_t file_size;
  int64_t mtime_ns;
  uint64_t validator_hash;
  uint64_t first_line;
  uint64_t entries;
  uint64_t skipped;
  uint64_t first_skipped_bytes;
};

template <typename T>
void put(std::ofstream& out, const T& value) {
  out.write(reinterpret_cast<const char*>(&value), sizeof value);
}

}  // namespace

BadRecordPolicy parse_bad_record_policy(const std::string& name) {
  if (name == "error") return BadRecordPolicy::kError;
  if (name == "skip") return BadRecordPolicy::kSkip;
  throw Error("data.on_bad_record: '" + name + "' is not one of error, skip");
}

std::filesystem::path LineIndex::cache_path(const std::filesystem::path& file) {
  return file.string() + ".idx.bin";
}

LineIndex LineIndex::build(const std::filesystem::path& file, const LineValidator& validate,
                           const IndexOptions& options) {
  LineIndex index;
  index.file_ = file;
  const FileStamp stamp = stamp_of(file);
  const uint64_t key_hash = fnv1a(options.validator_key);
  const std::filesystem::path cache = cache_path(file);

  // 1. A cache is used only when it describes this very file (size, mtime), was made by the
  //    same validator, and (under kError) skipped nothing: a skip-mode cache with bad lines is
  //    rescanned so the error names the line.
  if (options.use_cache) {
    std::ifstream in(cache, std::ios::binary);
    CacheHeader h{};
    if (in && in.read(reinterpret_cast<char*>(&h), sizeof h) &&
        std::memcmp(h.magic, kMagic, sizeof kMagic) == 0 && h.file_size == stamp.size &&
        h.mtime_ns == stamp.mtime_ns && h.validator_hash == key_hash &&
        h.first_line == options.first_line &&
        !(options.on_bad_record == BadRecordPolicy::kError && h.skipped > 0) &&
        h.first_skipped_bytes < (1u << 20) && h.entries <= stamp.size) {
      std::string first(h.first_skipped_bytes, '\0');
      std::vector<Entry> entries(h.entries);
      in.read(first.data(), static_cast<std::streamsize>(first.size()));
      in.read(reinterpret_cast<char*>(entries.data()),
              static_cast<std::streamsize>(entries.size() * sizeof(Entry)));
      if (in) {
        index.entries_ = std::move(entries);
        index.skipped_ = static_cast<int64_t>(h.skipped);
        index.first_skipped_ = std::move(first);
        index.from_cache_ = true;
        return index;
      }
    }
  }

  // 2. Scan: read in chunks, split on '\n', validate each non-blank line once.
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(file.string() + ": cannot open (" + std::strerror(errno) + ")");
  std::string carry;  // the unfinished line at the end of the previous chunk
  std::vector<char> chunk(kReadChunk);
  uint64_t line_start = 0;
  uint64_t line_number = 0;
  auto handle_line = [&](std::string_view line) {
    ++line_number;
    const uint64_t offset = line_start;
    line_start += line.size() + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_number < options.first_line || is_blank(line)) return;
    if (auto why = validate(line)) {
      const std::string message = file.string() + ":" + std::to_string(line_number) + ": " + *why;
      if (options.on_bad_record == BadRecordPolicy::kError) {
        ::close(fd);
        throw Error(message);
      }
      if (index.skipped_++ == 0) index.first_skipped_ = message;
      return;
    }
    if (line.size() > UINT32_MAX || line_number > UINT32_MAX) {
      ::close(fd);
      throw Error(file.string() + ":" + std::to_string(line_number) +
                  ": line longer than 4 GiB or beyond line 2^32");
    }
    index.entries_.push_back(
        {offset, static_cast<uint32_t>(line.size()), static_cast<uint32_t>(line_number)});
  };
  for (;;) {
    const ssize_t got = ::read(fd, chunk.data(), chunk.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      throw Error(file.string() + ": read failed (" + std::strerror(e) + ")");
    }
    if (got == 0) break;
    const char* begin = chunk.data();
    const char* end = begin + got;
    while (begin < end) {
      const char* nl = static_cast<const char*>(std::memchr(begin, '\n', end - begin));
      if (nl == nullptr) {
        carry.append(begin, end);
        break;
      }
      if (carry.empty()) {
        handle_line(std::string_view(begin, nl - begin));
      } else {
        carry.append(begin, nl);
        handle_line(carry);
        carry.clear();
      }
      begin = nl + 1;
    }
  }
  ::close(fd);
  if (!carry.empty()) handle_line(carry);  // last line without '\n'

  // 3. Cache it: written under a temporary name and renamed, so a reader never sees half a
  //    file. A read-only folder just keeps the index in memory.
  if (options.use_cache) {
    const std::filesystem::path tmp = cache.string() + ".tmp" + std::to_string(::getpid());
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (out) {
        CacheHeader h{};
        std::memcpy(h.magic, kMagic, sizeof kMagic);
        h.file_size = stamp.size;
        h.mtime_ns = stamp.mtime_ns;
        h.validator_hash = key_hash;
        h.first_line = options.first_line;
        h.entries = index.entries_.size();
        h.skipped = static_cast<uint64_t>(index.skipped_);
        h.first_skipped_bytes = index.first_skipped_.size();
        put(out, h);
        out.write(index.first_skipped_.data(),
                  static_cast<std::streamsize>(index.first_skipped_.size()));
        out.write(reinterpret_cast<const char*>(index.entries_.data()),
                  static_cast<std::streamsize>(index.entries_.size() * sizeof(Entry)));
      }
      if (!out) {
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        return index;
      }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, cache, ec);
    if (ec)
      std::filesystem::remove(tmp, ec);
    else  // the one file bireco writes outside its output folders: say where (durable_file.h)
      log::info("data: line index of ", file.string(), " cached in ", cache.string());
  }
  return index;
}

RecordFile::RecordFile(const std::filesystem::path& file) : file_(file) {}

std::string RecordFile::read(uint64_t offset, uint32_t length) const {
  // Opened for each read, so that a dataset of thousands of shards holds no descriptors
  // between reads (`ulimit -n` is often 1024, or 256); costs an open and a close per record,
  // small beside tokenizing it.
  const int fd = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(file_.string() + ": cannot open (" + std::strerror(errno) + ")");
  std::string bytes(length, '\0');
  size_t done = 0;
  while (done < length) {
    const ssize_t got =
        ::pread(fd, bytes.data() + done, length - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      ::close(fd);
      throw Error(file_.string() + ": short read at byte " + std::to_string(offset + done) +
                  " (the file changed since it was indexed?)");
    }
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  return bytes;
}

}  // namespace bireco::data
