// Small blocking file helpers shared by the WAL and snapshot files. Errors
// come back as Status values naming the path and errno's text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/core/status.h"

namespace kvd::io {

// "what: strerror(errno)" as an internal error.
core::Status Errno(const std::string& what);

// Reads a whole file into *out.
core::Status ReadFile(const std::string& path, std::string* out);

// "<prefix><number, 20 digits><suffix>", as the WAL and snapshots name
// their files.
std::string NumberedName(const char* prefix, uint64_t number, const char* suffix);
// The numbers of the files in `dir` named so, ascending.
std::vector<uint64_t> ListNumbered(const std::string& dir, const std::string& prefix,
                                   const std::string& suffix);

// A new or renamed file's name is durable only once its directory is
// synced.
core::Status SyncDirectory(const std::string& dir);

}  // namespace kvd::io
