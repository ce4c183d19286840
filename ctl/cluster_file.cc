#include "ctl/cluster_file.h"

#include <fstream>
#include <sstream>

namespace kvd::ctl {

using client::Code;
using client::Error;
using client::Result;

namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// Environment files may quote values.
std::string_view Unquote(std::string_view text) {
  if (text.size() >= 2 && (text.front() == '"' || text.front() == '\'') &&
      text.back() == text.front()) {
    return text.substr(1, text.size() - 2);
  }
  return text;
}

}  // namespace

Result<std::vector<std::string>> ParseClusterList(std::string_view list) {
  std::vector<std::string> addresses;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    size_t eq = item.find('=');
    std::string expected = std::to_string(addresses.size() + 1);
    if (eq == std::string_view::npos || item.substr(0, eq) != expected || eq + 1 == item.size()) {
      return Error{Code::kInvalidArgument,
                   "cluster entry '" + std::string(item) + "' is not " + expected + "=HOST:PORT"};
    }
    addresses.emplace_back(item.substr(eq + 1));
  }
  if (addresses.empty()) return Error{Code::kInvalidArgument, "empty cluster list"};
  return addresses;
}

Result<std::vector<std::string>> ParseClusterFile(std::string_view text) {
  std::string_view bare;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    std::string_view line = Trim(text.substr(0, newline));
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    if (line.empty() || line.front() == '#') continue;
    constexpr std::string_view kKey = "KVD_CLUSTER=";
    if (line.substr(0, kKey.size()) == kKey) {
      return ParseClusterList(Unquote(Trim(line.substr(kKey.size()))));
    }
    if (bare.empty()) bare = line;
  }
  if (bare.empty()) return Error{Code::kInvalidArgument, "no KVD_CLUSTER= line"};
  return ParseClusterList(Unquote(bare));
}

Result<std::vector<std::string>> ReadClusterFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{Code::kInvalidArgument, "cannot read cluster file " + path};
  std::stringstream text;
  text << in.rdbuf();
  Result<std::vector<std::string>> addresses = ParseClusterFile(text.str());
  if (!addresses.ok()) {
    return Error{Code::kInvalidArgument, path + ": " + addresses.error().message};
  }
  return addresses;
}

}  // namespace kvd::ctl
