#include "daemon/io/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace kvd::io {
namespace {

// Atomic: the thread pool logs too (removing old files), while a reload
// may change the level on the loop.
std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::string g_node = "kvd";
const bool g_journal = std::getenv("JOURNAL_STREAM") != nullptr;

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "?";
}

// syslog priorities, which journald reads from a "<N>" prefix.
int Priority(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return 3;
    case LogLevel::kWarn:
      return 4;
    case LogLevel::kInfo:
      return 6;
    case LogLevel::kDebug:
      return 7;
  }
  return 6;
}

}  // namespace

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  for (LogLevel l : {LogLevel::kError, LogLevel::kWarn, LogLevel::kInfo, LogLevel::kDebug}) {
    if (text == LevelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

void SetLogLevel(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }
void SetLogNode(std::string_view name) { g_node = name; }
bool LogEnabled(LogLevel level) { return level <= g_level.load(std::memory_order_relaxed); }

void LogLine(LogLevel level, const char* format, ...) {
  char message[2048];
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof(message), format, args);
  va_end(args);
  if (g_journal) {
    // journald stamps each line itself.
    std::fprintf(stderr, "<%d>%s: %s\n", Priority(level), g_node.c_str(), message);
    return;
  }
  // Anywhere else (a terminal, a file) the line carries its own UTC time to
  // the millisecond, so events of several nodes can be lined up.
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  std::fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", stamp, now.tv_nsec / 1000000, LevelName(level),
               g_node.c_str(), message);
}

}  // namespace kvd::io
