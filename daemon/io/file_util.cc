#include "daemon/io/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kvd::io {

core::Status Errno(const std::string& what) {
  return core::Status::Internal(what + ": " + std::strerror(errno));
}

core::Status ReadFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open " + path);
  struct stat info;
  if (fstat(fd, &info) != 0) {
    close(fd);
    return Errno("stat " + path);
  }
  out->resize(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < out->size()) {
    ssize_t n = read(fd, out->data() + done, out->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return Errno("read " + path);
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return core::Status::Ok();
}

core::Status SyncDirectory(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open directory " + dir);
  int rc = fsync(fd);
  close(fd);
  if (rc != 0) return Errno("fsync directory " + dir);
  return core::Status::Ok();
}

std::string NumberedName(const char* prefix, uint64_t number, const char* suffix) {
  char name[96];
  std::snprintf(name, sizeof(name), "%s%020llu%s", prefix, static_cast<unsigned long long>(number),
                suffix);
  return name;
}

std::vector<uint64_t> ListNumbered(const std::string& dir, const std::string& prefix,
                                   const std::string& suffix) {
  std::vector<uint64_t> numbers;
  DIR* d = opendir(dir.c_str());
  if (!d) return numbers;
  constexpr size_t kDigits = 20;
  while (dirent* entry = readdir(d)) {
    std::string name = entry->d_name;
    if (name.size() != prefix.size() + kDigits + suffix.size() ||
        name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    std::string digits = name.substr(prefix.size(), kDigits);
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    numbers.push_back(std::strtoull(digits.c_str(), nullptr, 10));
  }
  closedir(d);
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

}  // namespace kvd::io
