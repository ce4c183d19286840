// How kvctl shows replies: human-readable text (tables) and --json objects.
// Pure functions from client structs to text, so tests can pin the output
// that scripts rely on. Node ids in all output are 1-based ("n1").
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "ctl/client.h"
#include "ctl/json.h"

namespace kvd::ctl {

// "[1,0,3]"
std::string FormatClock(std::span<const uint64_t> clock);

// "n1:3" for one write, "n1:3..5" for a range.
std::string FormatMissing(const client::MissingRange& range);

// Bytes for a terminal: printable ASCII as is, '\\' doubled, anything else
// as \xNN, so keys with control characters cannot garble a table.
std::string Printable(std::string_view bytes);

// Human status of one node: a summary block, then one line per peer.
std::string StatusText(const client::NodeStatus& status);

// The --json status object: id, clock, buffered, keys, accepting_writes,
// log_entries, cluster_id, loop: {window_us, busy_us, cpu_us, turns,
// longest_turn_us, cpu_wait_us} (the event loop's last whole second; all 0
// before one, and from nodes that do not report it),
// and peers: [{id, address, connected, connected_out,
// connected_in, held, acked}]. `connected` is connected_out &&
// connected_in: replication flows both ways. `acked` is [] until the peer
// has acknowledged.
void StatusJson(const client::NodeStatus& status, JsonWriter* json);

// Human buffer listing: one line per buffered write.
std::string BufferText(const client::BufferListing& listing);

// The --json buffer object: total, and entries: [{origin, seq, key (or
// key_base64), is_delete, missing: ["n1:3", ...], missing_ranges:
// [{origin, first, last}]}].
void BufferJson(const client::BufferListing& listing, JsonWriter* json);

// The --json answer to put, get and del. get: {"key", "found", "value" (or
// "value_base64"; null when not found), "version"}; put and del (with_value
// false): {"key", "version"}. Keys that are not UTF-8 appear as
// "key_base64".
void ReplyJson(std::string_view key, const client::Reply& reply, bool with_value, JsonWriter* json);

}  // namespace kvd::ctl
