// Reading the secrets kvd is given as files (--cluster-secret-file,
// --client-secret-file): whole, bounded, not readable by everyone, and with
// a trailing line end dropped (`echo secret > FILE` and `openssl rand
// -base64 32 > FILE` both leave one).
#pragma once

#include <cstddef>
#include <string>

#include "daemon/core/status.h"

namespace kvd {

// Reads the secret in `path` into *out. Refuses (with a message naming the
// option `flag`) a file that cannot be read, that others may read or write
// (mode & 007), that is longer than wire::kSecretBytesMax, or whose secret
// is shorter than `min_bytes`.
core::Status ReadSecretFile(const std::string& path, const char* flag, size_t min_bytes,
                            std::string* out);

}  // namespace kvd
