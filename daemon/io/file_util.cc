#include "daemon/io/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace kvd::io
