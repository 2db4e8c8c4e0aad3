#include "tests/kvnode/storage/store_test_util.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "kvnode/storage/snapshot.h"

namespace rangekv::kvnode::testing {

namespace stdfs = std::filesystem;

namespace {
std::vector<std::string> Matching(const std::string& dir, bool (*match)(std::string_view)) {
  std::vector<std::string> out;
  for (const auto& e : stdfs::directory_iterator(dir)) {
    if (match(e.path().filename().string())) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::vector<std::string> SegmentPaths(const std::string& dir) {
  return Matching(dir, [](std::string_view n) {
    Seq s;
    return wal::ParseSegmentName(n, &s);
  });
}

std::vector<std::string> SnapshotPaths(const std::string& dir) {
  return Matching(dir, [](std::string_view n) {
    Seq s;
    return snapshot::ParseSnapshotName(n, &s);
  });
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<RecordSpan> RecordSpans(const std::string& path) {
  std::string data = ReadBytes(path);
  std::vector<RecordSpan> spans;
  auto r = wal::ReadSegment(data, wal::SegmentRole::kNewest, [&](const wal::RecordView& v) {
    spans.push_back({v.seq, v.offset, wal::kRecordHeaderSize + v.payload.size()});
    return Status::Ok();
  });
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return spans;
}

void CopyDir(const std::string& from, const std::string& to) {
  stdfs::create_directories(to);
  for (const auto& e : stdfs::directory_iterator(to)) stdfs::remove_all(e.path());
  for (const auto& e : stdfs::directory_iterator(from)) {
    stdfs::copy_file(e.path(), stdfs::path(to) / e.path().filename(),
                     stdfs::copy_options::overwrite_existing);
  }
}

}  // namespace rangekv::kvnode::testing
