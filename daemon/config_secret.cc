#include "daemon/config_secret.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "schema/auth.h"

namespace kvd {

core::Status ReadSecretFile(const std::string& path, const char* flag, size_t min_bytes,
                            std::string* out) {
  const std::string where = std::string(flag) + " " + path + ": ";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return core::Status::BadRequest(where + std::strerror(errno));
  struct stat info;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return core::Status::BadRequest(where + "not a regular file");
  }
  if ((info.st_mode & S_IRWXO) != 0) {
    ::close(fd);
    return core::Status::BadRequest(where + "other users may access it; chmod o-rwx " + path);
  }
  // One byte more than allowed, to tell "at the cap" from "over it".
  std::string bytes(wire::kSecretBytesMax + 1, '\0');
  size_t length = 0;
  while (length < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + length, bytes.size() - length);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return core::Status::BadRequest(where + std::strerror(error));
    }
    if (n == 0) break;
    length += static_cast<size_t>(n);
  }
  ::close(fd);
  if (length > wire::kSecretBytesMax) {
    return core::Status::BadRequest(where + "longer than " + std::to_string(wire::kSecretBytesMax) +
                                    " bytes");
  }
  bytes.resize(length);
  while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == '\r')) bytes.pop_back();
  if (bytes.size() < min_bytes) {
    return core::Status::BadRequest(where + "the secret must be at least " +
                                    std::to_string(min_bytes) +
                                    " bytes (for example: openssl rand -base64 32 > " + path + ")");
  }
  *out = std::move(bytes);
  return core::Status::Ok();
}

}  // namespace kvd
