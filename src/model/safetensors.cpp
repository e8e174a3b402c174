// Safetensors reading (mmap) and writing; the format is specified at
// https://github.com/huggingface/safetensors#format.
#include "bireco/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bireco/model/safetensors_header.h"
#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"

namespace bireco::model {
namespace {

// The dtypes bireco reads and writes, with the format's names (safetensors_header.cpp has
// their element sizes).
const std::vector<std::pair<std::string, torch::ScalarType>> kDtypes = {
    {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"F64", torch::kFloat64}, {"I64", torch::kInt64},   {"I32", torch::kInt32},
    {"I16", torch::kInt16},   {"I8", torch::kInt8},     {"U8", torch::kUInt8},
    {"BOOL", torch::kBool}};

}  // namespace

std::string dtype_name(torch::ScalarType dtype) {
  for (const auto& [name, type] : kDtypes)
    if (type == dtype) return name;
  throw Error(std::string("safetensors: cannot store dtype ") + c10::toString(dtype));
}

struct SafetensorsFile::Mapping {
  void* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data != nullptr && data != MAP_FAILED) ::munmap(data, size);
  }
};

SafetensorsFile::SafetensorsFile(const std::filesystem::path& file) : path_(file) {
  const std::string where = file.string();
  const int fd = ::open(where.c_str(), O_RDONLY);
  if (fd < 0) throw Error(where + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  mapping_ = std::make_shared<Mapping>();
  mapping_->size = static_cast<size_t>(st.st_size);
  if (mapping_->size < 8) {  // parse_safetensors_header names the file as too short
    ::close(fd);
    parse_safetensors_header(nullptr, mapping_->size, where);
  }
  // Private + writable: tensors handed out may be written to without touching the file.
  mapping_->data = ::mmap(nullptr, mapping_->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping_->data == MAP_FAILED) throw Error(where + ": mmap failed: " + std::strerror(errno));
  const auto* bytes = static_cast<const uint8_t*>(mapping_->data);

  const SafetensorsHeader header = parse_safetensors_header(bytes, mapping_->size, where);
  metadata_ = header.metadata;
  for (const SafetensorsEntry& entry : header.entries) {
    TensorInfo info{};
    for (const auto& [n, type] : kDtypes)
      if (n == entry.dtype) info.dtype = type;
    info.shape = entry.shape;
    info.begin = entry.begin;
    info.end = entry.end;
    infos_[entry.name] = info;
    order_.push_back(entry.name);
  }
  data_offset_ = header.data_offset;
}

std::vector<std::string> SafetensorsFile::names() const { return order_; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = infos_.find(name);
  if (it == infos_.end()) throw Error(path_.string() + ": no tensor `" + name + "`");
  return it->second;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo& i = info(name);
  auto* data = static_cast<uint8_t*>(mapping_->data) + data_offset_ + i.begin;
  auto keep = mapping_;
  return torch::from_blob(data, i.shape, [keep](void*) {}, torch::TensorOptions().dtype(i.dtype));
}

std::map<std::string, torch::Tensor> read_safetensors(const std::filesystem::path& file) {
  const SafetensorsFile f(file);
  std::map<std::string, torch::Tensor> out;
  for (const auto& name : f.names()) out[name] = f.tensor(name).clone();
  return out;
}

void write_safetensors(const std::filesystem::path& file, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const size_t bytes = c.numel() * c.element_size();
    header[name] = {{"dtype", dtype_name(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  // A reader never sees half a file, and a full disk is an Error naming the file.
  util::write_file_atomically(file, [&](util::DurableFile& out) {
    uint64_t n = text.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(text);
    for (const auto& c : data) out.write(c.data_ptr(), c.numel() * c.element_size());
  });
}

}  // namespace bireco::model
