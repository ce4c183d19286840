#include "ctl/render.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace kvd::ctl {
namespace {

std::string NodeName(uint32_t index) {
  // Appending (rather than "n" + std::string) dodges GCC 12's false
  // -Wrestrict at -O3 (GCC bug 105651).
  std::string name = "n";
  name += std::to_string(index + 1);
  return name;
}

const char* YesNo(bool value) { return value ? "yes" : "no"; }

const char* UpDown(bool value) { return value ? "up" : "down"; }

// Left-aligned columns, two spaces apart.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

std::string FormatClock(std::span<const uint64_t> clock) {
  std::string text = "[";
  for (size_t i = 0; i < clock.size(); ++i) {
    if (i > 0) text += ',';
    text += std::to_string(clock[i]);
  }
  return text + "]";
}

std::string FormatMissing(const client::MissingRange& range) {
  std::string text = NodeName(range.origin) + ":" + std::to_string(range.seq_first);
  if (range.seq_last != range.seq_first) text += ".." + std::to_string(range.seq_last);
  return text;
}

std::string Printable(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (u >= 0x20 && u < 0x7F) {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

// "busy 45 %, on a CPU 35 %, waiting for a CPU 9 %, 7012 turns, longest
// 3.1 ms (last 1.0 s)". The figures come from the node: printed as
// doubles, so a bad one cannot overflow a conversion.
std::string LoopText(const client::LoopStatus& loop) {
  if (!loop.reported) return "(not reported by this node)";
  if (loop.window_us == 0) return "(no whole second yet)";
  auto percent = [&loop](uint64_t us) {
    return 100.0 * static_cast<double>(us) / static_cast<double>(loop.window_us);
  };
  char text[200];
  std::snprintf(text, sizeof text,
                "busy %.0f %%, on a CPU %.0f %%, waiting for a CPU %.0f %%, %llu turns, longest "
                "%.1f ms (last %.1f s)",
                percent(loop.busy_us), percent(loop.cpu_us), percent(loop.cpu_wait_us),
                (unsigned long long)loop.turns, static_cast<double>(loop.longest_turn_us) / 1e3,
                static_cast<double>(loop.window_us) / 1e6);
  return text;
}

std::string StatusText(const client::NodeStatus& status) {
  std::string out = Table({
      {"node", NodeName(status.node_index)},
      {"clock", FormatClock(status.clock)},
      {"keys", std::to_string(status.keys)},
      {"buffered", std::to_string(status.buffered)},
      {"log entries", std::to_string(status.log_entries)},
      {"accepting writes", YesNo(status.accepting_writes)},
      {"cluster", status.cluster_id.empty() ? "(no identity yet)" : status.cluster_id},
      {"loop", LoopText(status.loop)},
  });
  if (status.peers.empty()) return out;
  std::vector<std::vector<std::string>> rows = {{"peer", "address", "out", "in", "held", "acked"}};
  for (const client::PeerStatus& peer : status.peers) {
    rows.push_back({NodeName(peer.node_index), peer.address, UpDown(peer.connected_out),
                    UpDown(peer.connected_in), YesNo(peer.held),
                    peer.acked.empty() ? "-" : FormatClock(peer.acked)});
  }
  return out + "\n" + Table(rows);
}

void StatusJson(const client::NodeStatus& status, JsonWriter* json) {
  json->BeginObject()
      .Key("id")
      .Uint(status.node_index + 1)
      .Key("clock")
      .Clock(status.clock)
      .Key("buffered")
      .Uint(status.buffered)
      .Key("keys")
      .Uint(status.keys)
      .Key("accepting_writes")
      .Bool(status.accepting_writes)
      .Key("log_entries")
      .Uint(status.log_entries)
      .Key("cluster_id")
      .String(status.cluster_id)
      .Key("loop")
      .BeginObject()
      .Key("window_us")
      .Uint(status.loop.window_us)
      .Key("busy_us")
      .Uint(status.loop.busy_us)
      .Key("cpu_us")
      .Uint(status.loop.cpu_us)
      .Key("turns")
      .Uint(status.loop.turns)
      .Key("longest_turn_us")
      .Uint(status.loop.longest_turn_us)
      .Key("cpu_wait_us")
      .Uint(status.loop.cpu_wait_us)
      .EndObject()
      .Key("peers")
      .BeginArray();
  for (const client::PeerStatus& peer : status.peers) {
    json->BeginObject()
        .Key("id")
        .Uint(peer.node_index + 1)
        .Key("address")
        .String(peer.address)
        .Key("connected")
        .Bool(peer.connected_out && peer.connected_in)
        .Key("connected_out")
        .Bool(peer.connected_out)
        .Key("connected_in")
        .Bool(peer.connected_in)
        .Key("held")
        .Bool(peer.held)
        .Key("acked")
        .Clock(peer.acked)
        .EndObject();
  }
  json->EndArray().EndObject();
}

std::string BufferText(const client::BufferListing& listing) {
  std::string out =
      std::to_string(listing.total) + " buffered write" + (listing.total == 1 ? "" : "s");
  if (listing.entries.size() < listing.total) {
    out += " (showing " + std::to_string(listing.entries.size()) + ")";
  }
  out += "\n";
  if (listing.entries.empty()) return out;
  std::vector<std::vector<std::string>> rows = {{"write", "op", "key", "waits for"}};
  for (const client::BufferedWrite& entry : listing.entries) {
    std::string missing;
    for (const client::MissingRange& range : entry.missing) {
      if (!missing.empty()) missing += ", ";
      missing += FormatMissing(range);
    }
    rows.push_back({NodeName(entry.origin) + ":" + std::to_string(entry.seq),
                    entry.is_delete ? "del" : "put", Printable(entry.key),
                    missing.empty() ? "-" : missing});
  }
  return out + Table(rows);
}

void BufferJson(const client::BufferListing& listing, JsonWriter* json) {
  json->BeginObject().Key("total").Uint(listing.total).Key("entries").BeginArray();
  for (const client::BufferedWrite& entry : listing.entries) {
    json->BeginObject()
        .Key("origin")
        .Uint(entry.origin + 1)
        .Key("seq")
        .Uint(entry.seq)
        .Bytes("key", entry.key)
        .Key("is_delete")
        .Bool(entry.is_delete)
        .Key("missing")
        .BeginArray();
    for (const client::MissingRange& range : entry.missing) json->String(FormatMissing(range));
    json->EndArray().Key("missing_ranges").BeginArray();
    for (const client::MissingRange& range : entry.missing) {
      json->BeginObject()
          .Key("origin")
          .Uint(range.origin + 1)
          .Key("first")
          .Uint(range.seq_first)
          .Key("last")
          .Uint(range.seq_last)
          .EndObject();
    }
    json->EndArray().EndObject();
  }
  json->EndArray().EndObject();
}

void ReplyJson(std::string_view key, const client::Reply& reply, bool with_value,
               JsonWriter* json) {
  json->BeginObject().Bytes("key", key);
  // For puts and deletes kvd does not fill in `found` yet, so it is left out.
  if (with_value) {
    json->Key("found").Bool(reply.found);
    if (reply.found) {
      json->Bytes("value", reply.value);
    } else {
      json->Key("value").Null();
    }
  }
  json->Key("version").Clock(reply.version).EndObject();
}

}  // namespace kvd::ctl
