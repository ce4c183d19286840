// Log: one line per event on stderr, "time level node: message key=value
// ...", the time in UTC to the millisecond. Under systemd (JOURNAL_STREAM
// set) lines start with the kernel-style priority prefix ("<6>") instead,
// so journald records the level; it adds the time.
#pragma once

#include <string_view>

namespace kvd::io {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// "error", "warn", "info" or "debug"; false for anything else.
bool ParseLogLevel(std::string_view text, LogLevel* level);

void SetLogLevel(LogLevel level);
// The node's name ("n2"), put before every line.
void SetLogNode(std::string_view name);
bool LogEnabled(LogLevel level);

// printf-style; one line, newline added.
void LogLine(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace kvd::io

// Cheap when the level is off: the arguments are not evaluated.
#define KV_LOG(level, ...)                                         \
  do {                                                             \
    if (::kvd::io::LogEnabled(::kvd::io::LogLevel::level)) {       \
      ::kvd::io::LogLine(::kvd::io::LogLevel::level, __VA_ARGS__); \
    }                                                              \
  } while (0)
