// Small blocking file helpers shared by the WAL and snapshot files. Errors
// come back as Status values naming the path and errno's text.
#pragma once

#include <string>

#include "daemon/core/status.h"

namespace kvd::io {

// "what: strerror(errno)" as an internal error.
core::Status Errno(const std::string& what);

// Reads a whole file into *out.
core::Status ReadFile(const std::string& path, std::string* out);

// A new or renamed file's name is durable only once its directory is
// synced.
core::Status SyncDirectory(const std::string& dir);

}  // namespace kvd::io
