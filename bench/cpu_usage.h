// CPU time of single threads, to say which side of a run was the
// bottleneck. On a 2-core machine the servers and kvbench share the cores:
// a figure means "the server's speed" only if the server's event loop (its
// main thread) was busy all the time, and "kvbench's speed" if kvbench's
// own loop was. uv_ceiling at PUT P=16, for one, showed its loop 68 % busy
// while kvbench's was 99 %.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

namespace kvbench {

// Seconds of CPU (user + system) used by the main thread of process `pid`
// (the thread whose id is the pid), from /proc/PID/task/PID/stat; nullopt
// if that thread is gone or its line does not parse.
inline std::optional<double> MainThreadCpuSeconds(int pid) {
  const std::string path =
      "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/stat";
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return std::nullopt;
  char line[1024];
  const bool read = std::fgets(line, sizeof(line), file) != nullptr;
  std::fclose(file);
  if (!read) return std::nullopt;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // the fields are counted from the last ')'. utime and stime are fields
  // 14 and 15, the 12th and 13th after it.
  const std::string text(line);
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(text.c_str() + close + 1,
                  " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) {
    return std::nullopt;
  }
  static const long ticks_per_s = sysconf(_SC_CLK_TCK);
  return static_cast<double>(utime + stime) / static_cast<double>(ticks_per_s);
}

// Seconds of CPU (user + system) used by the calling thread.
inline double OwnThreadCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace kvbench
