// XXH64 against the format's published vectors; manifest.json refusing truncated, corrupted
// and incomplete folders by name; durable writes turning a file-size limit into an Error.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bireco/util/durable_file.h"
#include "bireco/util/manifest.h"
#include "bireco/util/xxhash64.h"
#include "test_support.h"
#include "util/file_size_limit.h"

namespace bireco::util {
namespace {
namespace fs = std::filesystem;

uint64_t hash_of(const std::string& text, uint64_t seed = 0) {
  return xxhash64(text.data(), text.size(), seed);
}

// Published vectors: xxHash's own sanity check (xxhsum's BMK_sanityCheck: a 101-byte buffer
// of the top bytes of a squared 32-bit generator, seeds 0 and 2654435761), python-xxhash's
// README ("a", "xxhash" with seed 20141025) and Fastly's digest.hash_xxh64 docs ("abc").
TEST(Xxhash64, MatchesPublishedTestVectors) {
  EXPECT_EQ(hash_of(""), 0xEF46DB3751D8E999ull);
  EXPECT_EQ(hash_of("a"), 15154266338359012955ull);
  EXPECT_EQ(hash_of("abc"), 0x44BC2CF5AD770999ull);
  EXPECT_EQ(hash_of("xxhash"), 0x32dd38952c4bc720ull);
  EXPECT_EQ(hash_of("xxhash", 20141025), 0xb559b98d844e0635ull);

  constexpr uint32_t kPrime = 2654435761u;
  std::vector<uint8_t> sanity(101);
  uint32_t gen = kPrime;
  for (auto& byte : sanity) {
    byte = static_cast<uint8_t>(gen >> 24);
    gen *= gen;
  }
  EXPECT_EQ(xxhash64(nullptr, 0, kPrime), 0xAC75FDA2929B17EFull);
  EXPECT_EQ(xxhash64(sanity.data(), 1, 0), 0x4FCE394CC88952D8ull);
  EXPECT_EQ(xxhash64(sanity.data(), 1, kPrime), 0x739840CB819FA723ull);
  EXPECT_EQ(xxhash64(sanity.data(), 14, 0), 0xCFFA8DB881BC3A3Dull);
  EXPECT_EQ(xxhash64(sanity.data(), 14, kPrime), 0x5B9611585EFCC9CBull);
  EXPECT_EQ(xxhash64(sanity.data(), 101, 0),
            0x0EAB543384F878ADull);  // 32-byte stripes + every tail
  EXPECT_EQ(xxhash64(sanity.data(), 101, kPrime), 0xCAA65939306F1E21ull);
}

TEST(Xxhash64, FileHashEqualsBufferHash) {
  test::TempDir tmp;
  std::string text(100000, '\0');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>(i * 131 % 251);
  test::write_file(tmp / "blob", text);
  test::write_file(tmp / "empty", "");
  EXPECT_EQ(xxhash64_file(tmp / "blob"), hash_of(text));
  EXPECT_EQ(xxhash64_file(tmp / "empty"), 0xEF46DB3751D8E999ull);
}

// A folder like a checkpoint: two files at the top, one in a subfolder, and its manifest.
fs::path make_folder(const fs::path& root) {
  const fs::path dir = root / "step-40";
  test::write_file(dir / "model.safetensors", std::string(456, 'w'));
  test::write_file(dir / "config.json", "{}\n");
  test::write_file(dir / "trainer_state/optimizer.safetensors", std::string(300, 'o'));
  write_manifest(dir);
  return dir;
}

TEST(Manifest, IntactFolderPassesAndListsEveryFile) {
  test::TempDir tmp;
  const fs::path dir = make_folder(tmp.path());
  EXPECT_EQ(manifest_problem(dir, ManifestCheck::kChecksums), "");
  const Manifest m = read_manifest(dir);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m.at("model.safetensors").size, 456u);
  EXPECT_EQ(m.at("trainer_state/optimizer.safetensors").xxh64, hash_of(std::string(300, 'o')));
}

TEST(Manifest, TruncatedFileIsRefusedNamingItAndBothSizes) {
  test::TempDir tmp;
  const fs::path dir = make_folder(tmp.path());
  fs::resize_file(dir / "model.safetensors", 123);
  EXPECT_EQ(manifest_problem(dir, ManifestCheck::kSizes),
            (dir / "model.safetensors").string() +
                ": size 123 != manifest 456 (truncated or corrupted checkpoint)");
}

TEST(Manifest, FlippedByteIsCaughtByChecksumNotBySize) {
  test::TempDir tmp;
  const fs::path dir = make_folder(tmp.path());
  std::string bytes = test::read_file(dir / "trainer_state/optimizer.safetensors");
  bytes[150] ^= 0x01;
  test::write_file(dir / "trainer_state/optimizer.safetensors", bytes);
  EXPECT_EQ(manifest_problem(dir, ManifestCheck::kSizes), "");
  const std::string problem = manifest_problem(dir, ManifestCheck::kChecksums);
  EXPECT_EQ(problem.rfind((dir / "trainer_state/optimizer.safetensors").string() + ": xxh64 ", 0),
            0u)
      << problem;
  EXPECT_NE(problem.find("corrupted checkpoint"), std::string::npos);
}

TEST(Manifest, MissingOrGarbledManifestMeansIncomplete) {
  test::TempDir tmp;
  const fs::path dir = make_folder(tmp.path());
  test::write_file(dir / kManifestFile, "{\"format\": \"bireco-manif");  // cut mid-write
  EXPECT_NE(manifest_problem(dir, ManifestCheck::kSizes)
                .find((dir / kManifestFile).string() + ": unreadable"),
            std::string::npos);
  fs::remove(dir / kManifestFile);
  EXPECT_FALSE(has_manifest(dir));
  EXPECT_EQ(manifest_problem(dir, ManifestCheck::kSizes),
            (dir / kManifestFile).string() +
                ": missing (incomplete checkpoint: its save did not finish)");
}

TEST(Manifest, PathOutsideTheFolderIsRefused) {
  test::TempDir tmp;
  test::write_file(tmp / "d" / kManifestFile,
                   R"({"format": "bireco-manifest", "version": 1, "checksum": "xxh64",
                       "files": {"../secret": {"size": 1, "xxh64": "00"}}})");
  EXPECT_NE(
      test::error_of([&] { read_manifest(tmp / "d"); }).find("`../secret` lies outside the folder"),
      std::string::npos);
}

TEST(DurableFile, FileSizeLimitBecomesErrorNamingFileAndReason) {
  test::TempDir tmp;
  const fs::path file = tmp / "big.bin";
  std::string message;
  {
    test::FileSizeLimit limit(4096);
    message = test::error_of([&] { write_file_durably(file, std::string(10000, 'x')); });
  }
  EXPECT_EQ(message, file.string() + ": write failed: " + std::strerror(EFBIG));
}

TEST(DurableFile, AtomicWriteLeavesTheOldFileWhenTheNewOneDoesNotFit) {
  test::TempDir tmp;
  const fs::path file = tmp / "resolved_config.json";
  write_file_atomically(file, "old\n");
  std::string message;
  {
    test::FileSizeLimit limit(4096);
    message = test::error_of([&] { write_file_atomically(file, std::string(10000, 'x')); });
  }
  EXPECT_NE(message.find(std::strerror(EFBIG)), std::string::npos) << message;
  EXPECT_EQ(test::read_file(file), "old\n");
  EXPECT_FALSE(fs::exists(file.string() + ".tmp"));
}

TEST(DurableFile, InstallDirectoryReplacesTheOldFolderWhole) {
  test::TempDir tmp;
  test::write_file(tmp / "final/a.txt", "old");
  test::write_file(tmp / "final.tmp/b.txt", "new");
  install_directory(tmp / "final.tmp", tmp / "final");
  EXPECT_FALSE(fs::exists(tmp / "final.tmp"));
  EXPECT_FALSE(fs::exists(tmp / "final/a.txt"));
  EXPECT_EQ(test::read_file(tmp / "final/b.txt"), "new");
  for (const auto& entry : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(entry.path().filename(), "final") << "left behind: " << entry.path();
}

}  // namespace
}  // namespace bireco::util
