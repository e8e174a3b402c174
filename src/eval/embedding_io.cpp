// .npy and .safetensors embedding files.
#include "bireco/eval/embedding_io.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bireco/model/safetensors.h"
#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"

namespace bireco::eval {
namespace {

constexpr char kNpyMagic[] = "\x93NUMPY";  // 6 bytes, then version 1.0
constexpr size_t kNpyAlign = 64;           // numpy pads headers to 64 bytes since 1.14

}  // namespace

void write_npy(const std::filesystem::path& file, const torch::Tensor& embeddings) {
  if (embeddings.dim() != 2) throw Error(file.string() + ": embeddings must be 2-D");
  auto data = embeddings.to(torch::kCPU, torch::kFloat32).contiguous();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(data.size(0)) + ", " + std::to_string(data.size(1)) + "), }";
  const size_t prefix = 6 + 2 + 2;  // magic, version, header length
  header.append(kNpyAlign - (prefix + header.size() + 1) % kNpyAlign, ' ');
  header += '\n';
  const auto length = static_cast<uint16_t>(header.size());
  util::write_file_atomically(file, [&](util::DurableFile& out) {
    out.write(kNpyMagic, 6);
    const char version[2] = {1, 0};
    out.write(version, 2);
    const char len[2] = {static_cast<char>(length & 0xff), static_cast<char>(length >> 8)};
    out.write(len, 2);
    out.write(header);
    out.write(data.data_ptr(), static_cast<size_t>(data.numel()) * 4);
  });
}

torch::Tensor read_npy(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  char prefix[10];
  if (!in.read(prefix, 10) || std::memcmp(prefix, kNpyMagic, 6) != 0 || prefix[6] != 1)
    throw Error(file.string() + ": not a NumPy v1 .npy file");
  const size_t length = static_cast<unsigned char>(prefix[8]) | static_cast<size_t>(static_cast<unsigned char>(prefix[9])) << 8;
  std::string header(length, '\0');
  in.read(header.data(), static_cast<std::streamsize>(length));
  if (header.find("'descr': '<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
    throw Error(file.string() + ": only C-order '<f4' arrays are read");
  const auto open = header.find("'shape': (");
  int64_t rows = 0, cols = 0;
  if (open == std::string::npos || std::sscanf(header.c_str() + open + 10, "%ld, %ld)", &rows, &cols) != 2)
    throw Error(file.string() + ": expected a 2-D shape in the header");
  auto t = torch::empty({rows, cols}, torch::kFloat32);
  if (!in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(rows * cols * 4)))
    throw Error(file.string() + ": truncated data");
  return t;
}

std::filesystem::path ids_sidecar(const std::filesystem::path& npy_file) {
  auto sidecar = npy_file;
  return sidecar.replace_extension(".ids.txt");
}

void write_embeddings(const std::filesystem::path& file, const torch::Tensor& embeddings,
                      const std::vector<std::string>& ids) {
  if (static_cast<int64_t>(ids.size()) != embeddings.size(0))
    throw Error(file.string() + ": " + std::to_string(ids.size()) + " ids for " +
                std::to_string(embeddings.size(0)) + " embeddings");
  for (const auto& id : ids)
    if (id.find('\n') != std::string::npos) throw Error(file.string() + ": id '" + id + "' contains a newline");
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
  const auto ext = file.extension();
  if (ext == ".npy") {
    write_npy(file, embeddings);
    std::string text;
    for (const auto& id : ids) text += id + '\n';
    util::write_file_atomically(ids_sidecar(file), text);
  } else if (ext == ".safetensors") {
    model::write_safetensors(file, {{"embeddings", embeddings.to(torch::kCPU, torch::kFloat32)}},
                             {{"format", "pt"}, {"ids", nlohmann::json(ids).dump()}});
  } else {
    throw Error("--out: '" + file.string() + "' must end in .npy or .safetensors");
  }
}

}  // namespace bireco::eval
