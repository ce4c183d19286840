#include "ctl/context_file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "schema/limits.h"

namespace kvd::ctl {
namespace {

using client::Code;
using client::Context;
using client::Error;
using client::Result;

Error Bad(const std::string& why) { return {Code::kInvalidArgument, "bad context: " + why}; }

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void SkipSpace(std::string_view text, size_t* i) {
  while (*i < text.size() && IsSpace(text[*i])) ++*i;
}

// A JSON number that is a non-negative integer fitting 64 bits.
bool ParseEntry(std::string_view text, size_t* i, uint64_t* out) {
  const size_t start = *i;
  uint64_t value = 0;
  while (*i < text.size() && text[*i] >= '0' && text[*i] <= '9') {
    const uint64_t digit = static_cast<uint64_t>(text[*i] - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
    ++*i;
  }
  const size_t digits = *i - start;
  if (digits == 0) return false;
  if (digits > 1 && text[start] == '0') return false;  // JSON has no leading zeros.
  *out = value;
  return true;
}

Error FileError(const std::string& what, const std::string& path, int error) {
  return {Code::kInvalidArgument, what + " " + path + ": " + std::strerror(error)};
}

}  // namespace

Result<Context> ParseContext(std::string_view text) {
  size_t i = 0;
  SkipSpace(text, &i);
  if (i == text.size()) return Context();
  if (text[i] != '[') return Bad("expected a JSON array such as [1,0,2]");
  ++i;
  Context context;
  SkipSpace(text, &i);
  if (i < text.size() && text[i] == ']') {
    ++i;
  } else {
    for (;;) {
      SkipSpace(text, &i);
      uint64_t entry = 0;
      if (!ParseEntry(text, &i, &entry)) {
        return Bad("entry " + std::to_string(context.size() + 1) +
                   " is not an integer 0..18446744073709551615");
      }
      if (context.size() == wire::kNodesMax) {
        return Bad("more than " + std::to_string(wire::kNodesMax) + " entries");
      }
      context.push_back(entry);
      SkipSpace(text, &i);
      if (i < text.size() && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < text.size() && text[i] == ']') {
        ++i;
        break;
      }
      return Bad("expected ',' or ']' after entry " + std::to_string(context.size()));
    }
  }
  SkipSpace(text, &i);
  if (i != text.size()) return Bad("unexpected text after the array");
  return context;
}

std::string FormatContext(const Context& context) {
  std::string text = "[";
  for (size_t i = 0; i < context.size(); ++i) {
    if (i > 0) text += ',';
    text += std::to_string(context[i]);
  }
  return text + "]\n";
}

Result<Context> ReadContextFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Context();
    return FileError("cannot open context file", path, errno);
  }
  std::string text;
  char chunk[4096];
  // A context is at most 64 numbers; anything much longer is not one.
  constexpr size_t kFileBytesMax = 64 * 1024;
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return FileError("cannot read context file", path, error);
    }
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
    if (text.size() > kFileBytesMax) {
      ::close(fd);
      return Error{Code::kInvalidArgument, "context file " + path + " is too large"};
    }
  }
  ::close(fd);
  Result<Context> context = ParseContext(text);
  if (!context.ok()) {
    return Error{Code::kInvalidArgument, path + ": " + context.error().message};
  }
  return context;
}

Result<void> WriteContextFile(const std::string& path, const Context& context) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return FileError("cannot create", temporary, errno);
  const std::string text = FormatContext(context);
  size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      return FileError("cannot write", temporary, error);
    }
    written += static_cast<size_t>(n);
  }
  // The rename must not publish a file whose bytes are not on disk yet.
  int error = ::fsync(fd) == 0 ? 0 : errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    ::unlink(temporary.c_str());
    return FileError("cannot write", temporary, error);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    return FileError("cannot replace", path, error);
  }
  return {};
}

}  // namespace kvd::ctl
