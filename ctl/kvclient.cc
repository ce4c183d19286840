// The C API (kvclient.h) over kvd::client::Client. Every entry point
// catches what the C++ side could throw (only allocation failure, in
// practice), so no exception crosses into C.
#include "ctl/kvclient.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "ctl/client.h"
#include "schema/encoder.h"

using kvd::client::Client;
using kvd::client::Code;
using kvd::client::Context;
using kvd::client::Error;
using kvd::client::Result;

struct kv_client {
  explicit kv_client(Client c) : client(std::move(c)) {}
  Client client;
  std::string error;
};

namespace {

thread_local std::string connect_error;

int Report(kv_client* c, const Error& error) {
  c->error = error.message.empty() ? kvd::client::CodeName(error.code) : error.message;
  return static_cast<int>(error.code);
}

int Invalid(kv_client* c, const char* why) {
  if (c != nullptr) c->error = why;
  return KV_ERR_INVALID;
}

// Runs `body` with the handle's message cleared; turns exceptions into codes.
template <typename Body>
int Guarded(kv_client* c, Body body) {
  if (c == nullptr) return KV_ERR_INVALID;
  c->error.clear();
  try {
    return body();
  } catch (const std::bad_alloc&) {
    c->error = "out of memory";
    return KV_ERR_NOMEM;
  } catch (...) {
    c->error = "unexpected exception in the client library";
    return KV_INTERNAL;
  }
}

// A malloc'd, NUL-terminated copy (throws std::bad_alloc when out of
// memory); with `empty_is_null`, NULL for empty input.
char* CopyOut(const std::string& bytes, bool empty_is_null = true) {
  if (bytes.empty() && empty_is_null) return nullptr;
  char* out = static_cast<char*>(std::malloc(bytes.size() + 1));
  if (out == nullptr) throw std::bad_alloc();
  std::memcpy(out, bytes.data(), bytes.size());
  out[bytes.size()] = '\0';
  return out;
}

// Copies at most `cap` entries of `clock` to `out`; returns how many.
// (memcpy from an empty vector's null data() is undefined, even for 0 bytes.)
size_t CopyWords(const Context& clock, uint64_t* out, size_t cap) {
  const size_t n = std::min(clock.size(), cap);
  if (n > 0) std::memcpy(out, clock.data(), n * sizeof(uint64_t));
  return n;
}

int CopyClock(const Context& clock, uint64_t* out, size_t cap, size_t* len) {
  if (len == nullptr || (out == nullptr && cap > 0)) return KV_ERR_INVALID;
  *len = clock.size();
  if (clock.size() > cap) return KV_ERR_BUFFER;
  CopyWords(clock, out, cap);
  return KV_OK;
}

void CopyText(std::string_view text, char* out, size_t cap) {
  size_t n = std::min(text.size(), cap - 1);
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

std::string_view Bytes(const void* data, size_t len) {
  return {static_cast<const char*>(data), len};
}

// Keys and values: NULL is fine only with length 0.
bool BadBytes(const void* data, size_t len) { return data == nullptr && len > 0; }

int OutFrame(std::string frame, unsigned char** out, size_t* out_len) {
  *out = reinterpret_cast<unsigned char*>(CopyOut(frame));
  *out_len = frame.size();
  return KV_OK;
}

}  // namespace

extern "C" {

const char* kv_code_name(int code) { return kvd::client::CodeName(static_cast<Code>(code)); }

int kv_connect(const char* address, int timeout_ms, kv_client** out) {
  if (out == nullptr) return KV_ERR_INVALID;
  *out = nullptr;
  connect_error.clear();
  if (address == nullptr) {
    connect_error = "NULL address";
    return KV_ERR_INVALID;
  }
  try {
    kvd::client::Options options;
    options.connect_timeout_ms = timeout_ms;
    options.request_timeout_ms = timeout_ms;
    Result<Client> client = Client::Connect(address, options);
    if (!client.ok()) {
      connect_error = client.error().message;
      return static_cast<int>(client.error().code);
    }
    *out = new kv_client(std::move(client).value());
    return KV_OK;
  } catch (const std::bad_alloc&) {
    connect_error = "out of memory";
    return KV_ERR_NOMEM;
  }
}

void kv_close(kv_client* c) { delete c; }

int kv_auth(kv_client* c, const void* password, size_t password_len) {
  return Guarded(c, [&] {
    if (BadBytes(password, password_len)) return Invalid(c, "NULL password");
    Result<void> r = c->client.Authenticate(Bytes(password, password_len));
    return r.ok() ? KV_OK : Report(c, r.error());
  });
}

int kv_set_timeout(kv_client* c, int timeout_ms) {
  return Guarded(c, [&] {
    c->client.set_request_timeout_ms(timeout_ms);
    return KV_OK;
  });
}

const char* kv_errmsg(const kv_client* c) {
  return c == nullptr ? connect_error.c_str() : c->error.c_str();
}

void kv_free(void* p) { std::free(p); }

// --- Key-value ------------------------------------------------------------------------

int kv_put(kv_client* c, const void* key, size_t key_len, const void* value, size_t value_len) {
  return Guarded(c, [&] {
    if (BadBytes(key, key_len) || BadBytes(value, value_len))
      return Invalid(c, "NULL key or value");
    auto reply = c->client.Put(Bytes(key, key_len), Bytes(value, value_len));
    if (!reply.ok()) return Report(c, reply.error());
    return static_cast<int>(reply->status);
  });
}

int kv_get(kv_client* c, const void* key, size_t key_len, char** value, size_t* value_len,
           int* found) {
  if (value != nullptr) *value = nullptr;
  if (value_len != nullptr) *value_len = 0;
  if (found != nullptr) *found = 0;
  return Guarded(c, [&] {
    if (BadBytes(key, key_len)) return Invalid(c, "NULL key");
    auto reply = c->client.Get(Bytes(key, key_len));
    if (!reply.ok()) return Report(c, reply.error());
    if (reply->status == Code::kOk) {
      // A found value is never NULL, even when empty.
      if (value != nullptr) *value = CopyOut(reply->value, /*empty_is_null=*/false);
      if (value_len != nullptr) *value_len = reply->value.size();
      if (found != nullptr) *found = 1;
      return KV_OK;
    }
    c->error = "not found";
    return KV_NOT_FOUND;
  });
}

int kv_del(kv_client* c, const void* key, size_t key_len) {
  return Guarded(c, [&] {
    if (BadBytes(key, key_len)) return Invalid(c, "NULL key");
    auto reply = c->client.Delete(Bytes(key, key_len));
    if (!reply.ok()) return Report(c, reply.error());
    // A delete is a write: even a missing key gets a tombstone.
    return KV_OK;
  });
}

int kv_last_version(const kv_client* c, uint64_t* out, size_t cap, size_t* len) {
  if (c == nullptr) return KV_ERR_INVALID;
  return CopyClock(c->client.last_reply().version, out, cap, len);
}

int kv_last_found(const kv_client* c) {
  return c != nullptr && c->client.last_reply().found ? 1 : 0;
}

// --- Session --------------------------------------------------------------------------

int kv_context_get(const kv_client* c, uint64_t* out, size_t cap, size_t* len) {
  if (c == nullptr) return KV_ERR_INVALID;
  return CopyClock(c->client.context(), out, cap, len);
}

int kv_context_set(kv_client* c, const uint64_t* context, size_t len) {
  return Guarded(c, [&] {
    if (len > KV_NODES_MAX) return Invalid(c, "context longer than KV_NODES_MAX");
    if (context == nullptr && len > 0) return Invalid(c, "NULL context");
    c->client.set_context(len == 0 ? Context() : Context(context, context + len));
    return KV_OK;
  });
}

// --- Status and buffer --------------------------------------------------------------------

int kv_status(kv_client* c, kv_node_status* out) {
  return Guarded(c, [&] {
    if (out == nullptr) return Invalid(c, "NULL status");
    auto status = c->client.Status();
    if (!status.ok()) return Report(c, status.error());
    std::memset(out, 0, sizeof(*out));
    out->id = status->node_index + 1;
    // CheckEnvelope bounds clocks and the peer list by KV_NODES_MAX.
    out->clock_len = CopyWords(status->clock, out->clock, KV_NODES_MAX);
    out->buffered = status->buffered;
    out->keys = status->keys;
    out->log_entries = status->log_entries;
    out->accepting_writes = status->accepting_writes ? 1 : 0;
    const kvd::client::LoopStatus& loop = status->loop;
    out->loop = {loop.reported ? 1 : 0, loop.window_us, loop.busy_us,        loop.cpu_us,
                 loop.cpu_wait_us,      loop.turns,     loop.longest_turn_us};
    const size_t peers_max = sizeof(out->peers) / sizeof(out->peers[0]);
    out->peer_count = std::min(status->peers.size(), peers_max);
    for (size_t i = 0; i < out->peer_count; ++i) {
      const kvd::client::PeerStatus& in = status->peers[i];
      kv_peer_status& peer = out->peers[i];
      peer.id = in.node_index + 1;
      CopyText(in.address, peer.address, sizeof(peer.address));
      peer.connected_out = in.connected_out ? 1 : 0;
      peer.connected_in = in.connected_in ? 1 : 0;
      peer.held = in.held ? 1 : 0;
      peer.acked_len = CopyWords(in.acked, peer.acked, KV_NODES_MAX);
    }
    return KV_OK;
  });
}

void kv_buffer_free(kv_buffer_listing* listing) {
  if (listing == nullptr) return;
  for (size_t i = 0; i < listing->count; ++i) {
    std::free(listing->entries[i].key);
    std::free(listing->entries[i].missing);
  }
  std::free(listing->entries);
  std::free(listing);
}

int kv_buffer(kv_client* c, uint32_t limit, kv_buffer_listing** out) {
  if (out != nullptr) *out = nullptr;
  return Guarded(c, [&] {
    if (out == nullptr) return Invalid(c, "NULL listing");
    auto listing = c->client.Buffer(limit);
    if (!listing.ok()) return Report(c, listing.error());
    auto* result = static_cast<kv_buffer_listing*>(std::calloc(1, sizeof(kv_buffer_listing)));
    if (result == nullptr) throw std::bad_alloc();
    result->total = listing->total;
    const size_t count = listing->entries.size();
    if (count > 0) {
      result->entries =
          static_cast<kv_buffered_write*>(std::calloc(count, sizeof(kv_buffered_write)));
      if (result->entries == nullptr) {
        kv_buffer_free(result);
        throw std::bad_alloc();
      }
    }
    // count grows as entries are filled, so kv_buffer_free frees exactly those.
    for (const kvd::client::BufferedWrite& in : listing->entries) {
      kv_buffered_write& entry = result->entries[result->count++];
      entry.origin_id = in.origin + 1;
      entry.seq = in.seq;
      entry.is_delete = in.is_delete ? 1 : 0;
      entry.key_len = in.key.size();
      entry.key = static_cast<char*>(std::malloc(in.key.size() + 1));
      if (!in.missing.empty()) {
        entry.missing = static_cast<kv_missing_range*>(
            std::calloc(in.missing.size(), sizeof(kv_missing_range)));
      }
      if (entry.key == nullptr || (!in.missing.empty() && entry.missing == nullptr)) {
        kv_buffer_free(result);
        throw std::bad_alloc();
      }
      std::memcpy(entry.key, in.key.data(), in.key.size());
      entry.key[in.key.size()] = '\0';
      entry.missing_count = in.missing.size();
      for (size_t k = 0; k < in.missing.size(); ++k) {
        entry.missing[k] = {in.missing[k].origin + 1, in.missing[k].seq_first,
                            in.missing[k].seq_last};
      }
    }
    *out = result;
    return KV_OK;
  });
}

int kv_buffer_count(kv_client* c, uint64_t* count) {
  return Guarded(c, [&] {
    if (count == nullptr) return Invalid(c, "NULL count");
    auto status = c->client.Status();
    if (!status.ok()) return Report(c, status.error());
    *count = status->buffered;
    return KV_OK;
  });
}

// --- Admin ----------------------------------------------------------------------------

int kv_link(kv_client* c, uint32_t peer_id, int hold) {
  return Guarded(c, [&] {
    if (peer_id == 0) return Invalid(c, "peer ids start at 1");
    auto done = c->client.Link(peer_id - 1, hold != 0);
    if (!done.ok()) return Report(c, done.error());
    return KV_OK;
  });
}

int kv_shutdown(kv_client* c) {
  return Guarded(c, [&] {
    auto done = c->client.Shutdown();
    if (!done.ok()) return Report(c, done.error());
    return KV_OK;
  });
}

int kv_snapshot(kv_client* c) {
  return Guarded(c, [&] {
    auto done = c->client.Snapshot();
    if (!done.ok()) return Report(c, done.error());
    return KV_OK;
  });
}

// --- Pipelining ---------------------------------------------------------------------------

namespace {

int Queued(kv_client* c, Result<uint64_t> id, uint64_t* request_id) {
  if (!id.ok()) return Report(c, id.error());
  if (request_id != nullptr) *request_id = *id;
  return KV_OK;
}

}  // namespace

int kv_send_put(kv_client* c, const void* key, size_t key_len, const void* value, size_t value_len,
                uint64_t* request_id) {
  return Guarded(c, [&] {
    if (BadBytes(key, key_len) || BadBytes(value, value_len))
      return Invalid(c, "NULL key or value");
    return Queued(c, c->client.SendPut(Bytes(key, key_len), Bytes(value, value_len)), request_id);
  });
}

int kv_send_get(kv_client* c, const void* key, size_t key_len, uint64_t* request_id) {
  return Guarded(c, [&] {
    if (BadBytes(key, key_len)) return Invalid(c, "NULL key");
    return Queued(c, c->client.SendGet(Bytes(key, key_len)), request_id);
  });
}

int kv_send_del(kv_client* c, const void* key, size_t key_len, uint64_t* request_id) {
  return Guarded(c, [&] {
    if (BadBytes(key, key_len)) return Invalid(c, "NULL key");
    return Queued(c, c->client.SendDelete(Bytes(key, key_len)), request_id);
  });
}

int kv_flush(kv_client* c) {
  return Guarded(c, [&] {
    auto done = c->client.Flush();
    if (!done.ok()) return Report(c, done.error());
    return KV_OK;
  });
}

size_t kv_pending(const kv_client* c) { return c == nullptr ? 0 : c->client.pending(); }

void kv_reply_clear(kv_reply* reply) {
  if (reply == nullptr) return;
  std::free(reply->value);
  std::memset(reply, 0, sizeof(*reply));
}

int kv_recv_reply(kv_client* c, kv_reply* out) {
  if (out != nullptr) std::memset(out, 0, sizeof(*out));
  return Guarded(c, [&] {
    if (out == nullptr) return Invalid(c, "NULL reply");
    auto reply = c->client.ReceiveReply();
    if (!reply.ok()) return Report(c, reply.error());
    out->request_id = reply->request_id;
    out->status = static_cast<int>(reply->status);
    out->found = reply->found ? 1 : 0;
    out->value = CopyOut(reply->value);
    out->value_len = reply->value.size();
    out->version_len = CopyWords(reply->version, out->version, KV_NODES_MAX);
    c->error = reply->message;
    return KV_OK;
  });
}

// --- Raw access -------------------------------------------------------------------------------

int kv_send_raw(kv_client* c, const void* bytes, size_t len) {
  return Guarded(c, [&] {
    if (BadBytes(bytes, len)) return Invalid(c, "NULL bytes");
    auto done = c->client.SendRaw(Bytes(bytes, len));
    if (!done.ok()) return Report(c, done.error());
    return KV_OK;
  });
}

void kv_frame_clear(kv_frame* frame) {
  if (frame == nullptr) return;
  std::free(frame->bytes);
  std::memset(frame, 0, sizeof(*frame));
}

int kv_recv_raw_frame(kv_client* c, int timeout_ms, kv_frame* out) {
  if (out != nullptr) std::memset(out, 0, sizeof(*out));
  return Guarded(c, [&] {
    if (out == nullptr) return Invalid(c, "NULL frame");
    auto frame = c->client.ReceiveRawFrame(timeout_ms);
    if (!frame.ok()) return Report(c, frame.error());
    out->request_id = frame->request_id;
    out->type = frame->type;
    out->status = frame->status;
    CopyText(frame->message, out->message, sizeof(out->message));
    out->found = frame->found ? 1 : 0;
    out->version_len = CopyWords(frame->version, out->version, KV_NODES_MAX);
    out->bytes = reinterpret_cast<unsigned char*>(CopyOut(frame->bytes));
    out->size = frame->bytes.size();
    return KV_OK;
  });
}

int kv_is_closed(kv_client* c, int timeout_ms) {
  return Guarded(c, [&] { return c->client.WaitClosed(timeout_ms) ? 1 : 0; });
}

int kv_encode_request(int type, uint64_t request_id, const void* key, size_t key_len,
                      const void* value, size_t value_len, const uint64_t* context,
                      size_t context_len, unsigned char** out, size_t* out_len) {
  if (out == nullptr || out_len == nullptr || BadBytes(key, key_len) ||
      BadBytes(value, value_len) || (context == nullptr && context_len > 0)) {
    return KV_ERR_INVALID;
  }
  *out = nullptr;
  *out_len = 0;
  try {
    kvd::wire::Encoder encoder;
    std::string frame;
    std::span<const uint64_t> clock(context, context_len);
    switch (type) {
      case KV_MSG_PUT_REQUEST:
        encoder.Encode(
            request_id,
            kvd::wire::PutRequestFields{Bytes(key, key_len), Bytes(value, value_len), clock},
            &frame);
        break;
      case KV_MSG_GET_REQUEST:
        encoder.Encode(request_id, kvd::wire::GetRequestFields{Bytes(key, key_len), clock}, &frame);
        break;
      case KV_MSG_DELETE_REQUEST:
        encoder.Encode(request_id, kvd::wire::DeleteRequestFields{Bytes(key, key_len), clock},
                       &frame);
        break;
      default:
        return KV_ERR_INVALID;
    }
    return OutFrame(std::move(frame), out, out_len);
  } catch (const std::bad_alloc&) {
    return KV_ERR_NOMEM;
  }
}

int kv_encode_admin(int type, uint64_t request_id, uint32_t arg, int hold, unsigned char** out,
                    size_t* out_len) {
  if (out == nullptr || out_len == nullptr) return KV_ERR_INVALID;
  *out = nullptr;
  *out_len = 0;
  try {
    kvd::wire::Encoder encoder;
    std::string frame;
    switch (type) {
      case KV_MSG_STATUS_REQUEST:
        encoder.Encode(request_id, kvd::wire::StatusRequestFields{}, &frame);
        break;
      case KV_MSG_BUFFER_REQUEST:
        encoder.Encode(request_id, kvd::wire::BufferRequestFields{arg}, &frame);
        break;
      case KV_MSG_LINK_REQUEST:
        if (arg == 0) return KV_ERR_INVALID;
        encoder.Encode(request_id, kvd::wire::LinkRequestFields{arg - 1, hold != 0}, &frame);
        break;
      case KV_MSG_SHUTDOWN_REQUEST:
        encoder.Encode(request_id, kvd::wire::ShutdownRequestFields{}, &frame);
        break;
      default:
        return KV_ERR_INVALID;
    }
    return OutFrame(std::move(frame), out, out_len);
  } catch (const std::bad_alloc&) {
    return KV_ERR_NOMEM;
  }
}

}  // extern "C"
