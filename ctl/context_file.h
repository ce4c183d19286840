// The session context file of `kvctl --context FILE`: a JSON array of
// non-negative integers, one per node in cluster order ("[3,0,1]"). kvctl
// reads it before a request and writes the merged context back after it,
// so a shell session keeps causality across invocations and nodes.
#pragma once

#include <string>
#include <string_view>

#include "ctl/client.h"
#include "ctl/result.h"

namespace kvd::ctl {

// Parses the file's text. Whitespace around tokens is fine; an empty or
// all-whitespace text is the empty context (a file made with `touch`).
// Anything else — numbers with signs, fractions, exponents or leading
// zeros, values over 2^64-1, more than 64 entries, trailing bytes — is
// kInvalidArgument.
client::Result<client::Context> ParseContext(std::string_view text);

// "[3,0,1]\n"
std::string FormatContext(const client::Context& context);

// A missing file is the empty context; other I/O failures and bad
// contents are kInvalidArgument, naming the file.
client::Result<client::Context> ReadContextFile(const std::string& path);

// Replaces the file atomically (writes PATH.tmp.PID, fsyncs, renames), so a
// crash or a concurrent reader never sees half a context.
client::Result<void> WriteContextFile(const std::string& path, const client::Context& context);

}  // namespace kvd::ctl
