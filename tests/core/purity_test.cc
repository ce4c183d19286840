// The replication core stays pure (DESIGN §4): nothing in daemon/core may
// include libuv, FlatBuffers, <chrono> or socket headers. Equivalent to
//   grep -rE '#include *[<"](uv\.h|flatbuffers/|chrono|sys/socket\.h|netinet/)' daemon/core
// finding nothing.
#include <criterion/criterion.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#ifndef KV_CORE_SOURCE_DIR
#error "KV_CORE_SOURCE_DIR must name daemon/core"
#endif

namespace {

const std::regex& ForbiddenInclude() {
  static const std::regex pattern(
      R"re(#include *[<"](uv\.h|flatbuffers/|chrono|sys/socket\.h|netinet/))re",
      std::regex::extended);
  return pattern;
}

// "file:line: text" for every forbidden include under `dir`.
std::vector<std::string> Violations(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& item : std::filesystem::recursive_directory_iterator(dir)) {
    if (!item.is_regular_file()) continue;
    std::ifstream in(item.path());
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      if (std::regex_search(line, ForbiddenInclude())) {
        out.push_back(item.path().string() + ":" + std::to_string(number) + ": " + line);
      }
    }
  }
  return out;
}

}  // namespace

Test(purity, pattern_catches_forbidden_includes) {
  const char* forbidden[] = {
      "#include <uv.h>",
      "#include \"uv.h\"",
      "#include <flatbuffers/flatbuffers.h>",
      "#include <chrono>",
      "#include  <sys/socket.h>",
      "#include <netinet/in.h>",
      "  #include <chrono>  // indented",
  };
  for (const char* line : forbidden) {
    cr_assert(std::regex_search(std::string(line), ForbiddenInclude()), "missed: %s", line);
  }
  const char* allowed[] = {
      "#include <vector>",
      "#include \"daemon/core/replica.h\"",
      "#include <sys/types.h>",
      "// uses uv.h? never",
  };
  for (const char* line : allowed) {
    cr_assert_not(std::regex_search(std::string(line), ForbiddenInclude()), "flagged: %s", line);
  }
}

Test(purity, core_includes_no_io_headers) {
  const std::filesystem::path dir(KV_CORE_SOURCE_DIR);
  cr_assert(std::filesystem::is_directory(dir), "no such directory: %s", KV_CORE_SOURCE_DIR);
  // The scan must actually see the core.
  cr_assert(std::filesystem::exists(dir / "replica.cc"), "replica.cc not found in %s",
            KV_CORE_SOURCE_DIR);
  std::vector<std::string> violations = Violations(dir);
  std::string report;
  for (const std::string& violation : violations) report += "\n  " + violation;
  cr_assert(violations.empty(), "daemon/core includes I/O headers:%s", report.c_str());
}

Test(purity, scan_finds_a_planted_include) {
  // The scanner itself can fail: plant a forbidden include in a scratch
  // directory and expect exactly that line.
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("kv_purity_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "sub");
  {
    std::ofstream(dir / "clean.h") << "#include <vector>\n";
    std::ofstream(dir / "sub" / "dirty.cc") << "#include <map>\n#include <chrono>\n";
  }
  std::vector<std::string> violations = Violations(dir);
  std::filesystem::remove_all(dir);
  cr_assert_eq(violations.size(), 1u);
  cr_assert(violations[0].find("dirty.cc:2") != std::string::npos, "got %s", violations[0].c_str());
}
