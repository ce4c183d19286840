// The client library against a scripted server (fake_server.h): replies,
// sessions, pipelining, server errors, timeouts, broken connections; and
// the C API over the same.
#include "ctl/client.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ctl/fake_server.h"
#include "ctl/kvclient.h"
#include "schema/view.h"

using namespace kvd;
using client::Client;
using client::Code;
using client::Context;
using client::test::Action;
using client::test::FakeServer;

namespace {

// A one-node-of-three store: node index 0, so every write bumps clock[0].
// Records the context of the last request.
struct FakeStore {
  std::mutex mu;
  std::map<std::string, std::string> values;
  std::vector<uint64_t> clock = {0, 0, 0};
  Context last_context;

  FakeServer::Handler Handler() {
    return [this](const fb::Envelope& env, wire::Encoder& enc, std::string* out) {
      std::lock_guard<std::mutex> lock(mu);
      switch (env.message_type()) {
        case fb::Message::PutRequest: {
          auto* m = env.message_as_PutRequest();
          auto ctx = wire::AsClock(m->context());
          last_context.assign(ctx.begin(), ctx.end());
          values[std::string(wire::AsBytes(m->key()))] = std::string(wire::AsBytes(m->value()));
          ++clock[0];
          enc.Encode(env.request_id(), wire::ReplyFields{.version = clock}, out);
          break;
        }
        case fb::Message::GetRequest: {
          auto* m = env.message_as_GetRequest();
          auto ctx = wire::AsClock(m->context());
          last_context.assign(ctx.begin(), ctx.end());
          auto it = values.find(std::string(wire::AsBytes(m->key())));
          if (it == values.end()) {
            enc.Encode(env.request_id(),
                       wire::ReplyFields{.status = fb::Status::NOT_FOUND, .version = clock}, out);
          } else {
            enc.Encode(env.request_id(),
                       wire::ReplyFields{.found = true, .value = it->second, .version = clock},
                       out);
          }
          break;
        }
        case fb::Message::DeleteRequest:
          values.erase(std::string(wire::AsBytes(env.message_as_DeleteRequest()->key())));
          ++clock[0];
          enc.Encode(env.request_id(), wire::ReplyFields{.version = clock}, out);
          break;
        default:
          enc.Encode(env.request_id(),
                     wire::ErrorFields{fb::Status::BAD_REQUEST, "unexpected message"}, out);
          return Action{.close = true};
      }
      return Action{};
    };
  }
};

client::Options Fast() {
  client::Options options;
  options.connect_timeout_ms = 2000;
  options.request_timeout_ms = 2000;
  return options;
}

Client MustConnect(const std::string& address, client::Options options = Fast()) {
  auto c = Client::Connect(address, options);
  cr_assert(c.ok(), "connect: %s", c.ok() ? "" : c.error().message.c_str());
  return std::move(c).value();
}

// A loopback port nothing listens on (bound, then released).
std::string DeadAddress() {
  FakeServer server([](const fb::Envelope&, wire::Encoder&, std::string*) { return Action{}; });
  return server.address();
}

}  // namespace

Test(client, put_get_delete_and_session_context) {
  FakeStore store;
  FakeServer server(store.Handler());
  Client c = MustConnect(server.address());
  cr_assert(c.context().empty());

  auto put = c.Put("x", "1");
  cr_assert(put.ok(), "%s", put.ok() ? "" : put.error().message.c_str());
  cr_assert_eq(put->status, Code::kOk);
  cr_assert(put->version == (Context{1, 0, 0}));
  cr_assert(c.context() == (Context{1, 0, 0}));
  // The first request had no context to send.
  cr_assert(store.last_context.empty());

  auto get = c.Get("x");
  cr_assert(get.ok());
  cr_assert(get->found);
  cr_assert_eq(get->value, "1");
  cr_assert(store.last_context == (Context{1, 0, 0}), "context sent with the get");

  auto missing = c.Get("nope");
  cr_assert(missing.ok());
  cr_assert_eq(missing->status, Code::kNotFound);
  cr_assert_not(missing->found);

  auto del = c.Delete("x");
  cr_assert(del.ok());
  cr_assert(c.context() == (Context{2, 0, 0}));
  cr_assert(c.last_reply().version == (Context{2, 0, 0}));

  c.set_context({0, 5, 0});
  cr_assert(c.Get("x").ok());
  cr_assert(store.last_context == (Context{0, 5, 0}));
  cr_assert(c.context() == (Context{2, 5, 0}), "merged with the reply's version");
}

Test(client, binary_keys_and_values) {
  FakeStore store;
  FakeServer server(store.Handler());
  Client c = MustConnect(server.address());
  const std::string key("k\0\xff", 3);
  const std::string value("\0\x01\x02\xfe", 4);
  cr_assert(c.Put(key, value).ok());
  auto get = c.Get(key);
  cr_assert(get.ok());
  cr_assert_eq(get->value, value);
}

Test(client, server_status_in_a_reply_keeps_the_connection) {
  int calls = 0;
  FakeServer server([&calls](const fb::Envelope& env, wire::Encoder& enc, std::string* out) {
    if (calls++ == 0) {
      enc.Encode(env.request_id(),
                 wire::ReplyFields{.status = fb::Status::TIMEOUT,
                                   .message = "context not reached; waiting for n1:1"},
                 out);
    } else {
      const uint64_t clock[] = {1, 0, 0};
      enc.Encode(env.request_id(), wire::ReplyFields{.found = true, .value = "v", .version = clock},
                 out);
    }
    return Action{};
  });
  Client c = MustConnect(server.address());
  c.set_context({1, 0, 0});
  auto timed_out = c.Get("x");
  cr_assert_not(timed_out.ok());
  cr_assert_eq(timed_out.error().code, Code::kTimeout);
  cr_assert_eq(timed_out.error().message, "context not reached; waiting for n1:1");
  cr_assert(c.context() == (Context{1, 0, 0}), "a failed request changes no context");
  auto again = c.Get("x");
  cr_assert(again.ok());
}

Test(client, error_frame_fails_the_call_and_the_connection) {
  FakeServer server([](const fb::Envelope&, wire::Encoder& enc, std::string* out) {
    enc.Encode(0, wire::ErrorFields{fb::Status::TOO_LARGE, "frame of 99 bytes exceeds the cap"},
               out);
    return Action{.close = true};
  });
  Client c = MustConnect(server.address());
  auto put = c.Put("x", "1");
  cr_assert_not(put.ok());
  cr_assert_eq(put.error().code, Code::kTooLarge);
  cr_assert_eq(put.error().message, "frame of 99 bytes exceeds the cap");
  auto later = c.Get("x");
  cr_assert_not(later.ok());
  cr_assert_eq(later.error().code, Code::kConnection);
}

Test(client, reply_to_another_request_is_a_protocol_error) {
  FakeServer server([](const fb::Envelope& env, wire::Encoder& enc, std::string* out) {
    enc.Encode(env.request_id() + 7, wire::ReplyFields{}, out);
    return Action{};
  });
  Client c = MustConnect(server.address());
  auto put = c.Put("x", "1");
  cr_assert_not(put.ok());
  cr_assert_eq(put.error().code, Code::kProtocol);
}

Test(client, wrong_reply_type_is_a_protocol_error) {
  FakeServer server([](const fb::Envelope& env, wire::Encoder& enc, std::string* out) {
    enc.Encode(env.request_id(), wire::AdminReplyFields{}, out);
    return Action{};
  });
  Client c = MustConnect(server.address());
  auto get = c.Get("x");
  cr_assert_not(get.ok());
  cr_assert_eq(get.error().code, Code::kProtocol);
}

Test(client, garbage_from_the_server_is_a_protocol_error) {
  FakeServer server([](const fb::Envelope&, wire::Encoder&, std::string* out) {
    out->append("\0\0\0\0garbage", 11);  // A zero size prefix.
    return Action{};
  });
  Client c = MustConnect(server.address());
  auto get = c.Get("x");
  cr_assert_not(get.ok());
  cr_assert_eq(get.error().code, Code::kProtocol);
}

Test(client, silent_server_times_out) {
  FakeServer server([](const fb::Envelope&, wire::Encoder&, std::string*) { return Action{}; });
  client::Options options = Fast();
  options.request_timeout_ms = 150;
  Client c = MustConnect(server.address(), options);
  auto start = std::chrono::steady_clock::now();
  auto get = c.Get("x");
  auto elapsed = std::chrono::steady_clock::now() - start;
  cr_assert_not(get.ok());
  cr_assert_eq(get.error().code, Code::kTimedOut);
  cr_assert(elapsed >= std::chrono::milliseconds(140));
  cr_assert(elapsed < std::chrono::milliseconds(1500));
}

Test(client, server_closing_is_a_connection_error) {
  FakeServer server(
      [](const fb::Envelope&, wire::Encoder&, std::string*) { return Action{.close = true}; });
  Client c = MustConnect(server.address());
  auto get = c.Get("x");
  cr_assert_not(get.ok());
  cr_assert_eq(get.error().code, Code::kConnection);
}

Test(client, refused_connect_and_bad_address) {
  auto refused = Client::Connect(DeadAddress(), Fast());
  cr_assert_not(refused.ok());
  cr_assert_eq(refused.error().code, Code::kConnection);
  cr_assert(refused.error().message.find("refused") != std::string::npos, "%s",
            refused.error().message.c_str());
  auto bad = Client::Connect("no-port", Fast());
  cr_assert_not(bad.ok());
  cr_assert_eq(bad.error().code, Code::kInvalidArgument);
  auto no_socket = Client::Connect("/nonexistent/kvd.sock", Fast());
  cr_assert_not(no_socket.ok());
  cr_assert_eq(no_socket.error().code, Code::kConnection);
}

Test(client, connect_timeout) {
  // A listener with a full accept queue: Linux drops further SYNs, so the
  // second connect hangs until the client gives up.
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  cr_assert_eq(bind(listener, reinterpret_cast<sockaddr*>(&address), length), 0);
  cr_assert_eq(listen(listener, 0), 0);
  cr_assert_eq(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string target = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  client::Options options = Fast();
  options.connect_timeout_ms = 200;
  auto first = Client::Connect(target, options);
  cr_assert(first.ok());
  auto start = std::chrono::steady_clock::now();
  auto second = Client::Connect(target, options);
  auto elapsed = std::chrono::steady_clock::now() - start;
  cr_assert_not(second.ok());
  cr_assert_eq(second.error().code, Code::kTimedOut, "%s", second.error().message.c_str());
  cr_assert(elapsed >= std::chrono::milliseconds(190));
  cr_assert(elapsed < std::chrono::milliseconds(1500));
  close(listener);
}

Test(client, pipelined_replies_in_order) {
  FakeStore store;
  FakeServer server(store.Handler());
  Client c = MustConnect(server.address());
  std::vector<uint64_t> ids;
  for (int i = 0; i < 500; ++i) {
    std::string key = "k";
    key += std::to_string(i);
    auto id = c.SendPut(key, std::string(100, 'v'));
    cr_assert(id.ok());
    ids.push_back(*id);
  }
  cr_assert_eq(c.pending(), 500);
  cr_assert(c.Flush().ok());
  // A blocking call must wait for the pipeline to drain.
  auto blocked = c.Get("k0");
  cr_assert_not(blocked.ok());
  cr_assert_eq(blocked.error().code, Code::kInvalidArgument);
  for (int i = 0; i < 500; ++i) {
    auto reply = c.ReceiveReply();
    cr_assert(reply.ok(), "%s", reply.ok() ? "" : reply.error().message.c_str());
    cr_assert_eq(reply->request_id, ids[i]);
    cr_assert_eq(reply->kind, client::RequestKind::kPut);
    cr_assert_eq(reply->version[0], static_cast<uint64_t>(i + 1));
  }
  cr_assert_eq(c.pending(), 0);
  cr_assert(c.context() == (Context{500, 0, 0}));
  auto none = c.ReceiveReply();
  cr_assert_not(none.ok());
  cr_assert_eq(none.error().code, Code::kInvalidArgument);
}

Test(client, status_buffer_and_admin_replies) {
  FakeServer server([](const fb::Envelope& env, wire::Encoder& enc, std::string* out) {
    const uint64_t clock[] = {3, 1, 0};
    switch (env.message_type()) {
      case fb::Message::StatusRequest: {
        wire::PeerStatusFields peers[] = {{1, "127.0.0.1:7002", true, true, false, clock},
                                          {2, "127.0.0.1:7003", false, true, true, {}}};
        wire::StatusReplyFields fields{0, clock, 1, 2, true, peers, 4};
        fields.loop = {1'002'000, 450'000, 350'000, 7012, 3100, 90'000};
        enc.Encode(env.request_id(), fields, out);
        break;
      }
      case fb::Message::BufferRequest: {
        fb::MissingRange missing[] = {fb::MissingRange(0, 4, 5)};
        wire::BufferedWriteFields entries[] = {{1, 2, "y", false, missing}};
        enc.Encode(env.request_id(), wire::BufferReplyFields{entries, 1}, out);
        break;
      }
      case fb::Message::LinkRequest:
        if (env.message_as_LinkRequest()->peer_index() == 2) {
          enc.Encode(env.request_id(), wire::AdminReplyFields{}, out);
        } else {
          enc.Encode(env.request_id(),
                     wire::AdminReplyFields{fb::Status::BAD_REQUEST, "node 9 is not a peer"}, out);
        }
        break;
      default:
        enc.Encode(env.request_id(),
                   wire::AdminReplyFields{fb::Status::UNAUTHORIZED, "admin socket only"}, out);
    }
    return Action{};
  });
  Client c = MustConnect(server.address());
  auto status = c.Status();
  cr_assert(status.ok(), "%s", status.ok() ? "" : status.error().message.c_str());
  cr_assert_eq(status->node_index, 0);
  cr_assert(status->clock == (Context{3, 1, 0}));
  cr_assert_eq(status->buffered, 1);
  cr_assert_eq(status->keys, 2);
  cr_assert_eq(status->log_entries, 4);
  cr_assert(status->accepting_writes);
  cr_assert_eq(status->loop.window_us, 1'002'000);
  cr_assert_eq(status->loop.busy_us, 450'000);
  cr_assert_eq(status->loop.cpu_us, 350'000);
  cr_assert_eq(status->loop.turns, 7012);
  cr_assert_eq(status->loop.longest_turn_us, 3100);
  cr_assert_eq(status->loop.cpu_wait_us, 90'000);
  cr_assert(status->loop.reported);
  cr_assert_eq(status->peers.size(), 2);
  cr_assert_eq(status->peers[1].address, "127.0.0.1:7003");
  cr_assert(status->peers[1].held);
  cr_assert(status->peers[1].acked.empty());

  auto buffer = c.Buffer(10);
  cr_assert(buffer.ok());
  cr_assert_eq(buffer->total, 1);
  cr_assert_eq(buffer->entries.size(), 1);
  cr_assert_eq(buffer->entries[0].key, "y");
  cr_assert_eq(buffer->entries[0].missing[0].seq_last, 5);

  cr_assert(c.Link(2, true).ok());
  auto bad_link = c.Link(8, true);
  cr_assert_not(bad_link.ok());
  cr_assert_eq(bad_link.error().code, Code::kBadRequest);

  auto shutdown = c.Shutdown();
  cr_assert_not(shutdown.ok());
  cr_assert_eq(shutdown.error().code, Code::kUnauthorized);
  cr_assert(c.Status().ok(), "an admin refusal leaves the connection usable");
}

// --- The C API over the same fake server ---------------------------------------------

Test(kvclient, put_get_context_and_versions) {
  FakeStore store;
  FakeServer server(store.Handler());
  kv_client* c = nullptr;
  cr_assert_eq(kv_connect(server.address().c_str(), 2000, &c), KV_OK);
  cr_assert_eq(kv_put(c, "x", 1, "hello", 5), KV_OK);
  uint64_t version[KV_NODES_MAX];
  size_t len = 0;
  cr_assert_eq(kv_last_version(c, version, KV_NODES_MAX, &len), KV_OK);
  cr_assert_eq(len, 3);
  cr_assert_eq(version[0], 1);

  char* value = nullptr;
  size_t value_len = 0;
  int found = -1;
  cr_assert_eq(kv_get(c, "x", 1, &value, &value_len, &found), KV_OK);
  cr_assert_eq(found, 1);
  cr_assert_eq(value_len, 5);
  cr_assert_str_eq(value, "hello");
  kv_free(value);

  cr_assert_eq(kv_put(c, "empty", 5, nullptr, 0), KV_OK);
  cr_assert_eq(kv_get(c, "empty", 5, &value, &value_len, &found), KV_OK);
  cr_assert_not_null(value, "a found empty value is \"\", not NULL");
  cr_assert_eq(value_len, 0);
  cr_assert_str_eq(value, "");
  kv_free(value);

  cr_assert_eq(kv_get(c, "y", 1, &value, &value_len, &found), KV_NOT_FOUND);
  cr_assert_eq(found, 0);
  cr_assert_null(value);
  cr_assert_str_eq(kv_errmsg(c), "not found");

  uint64_t context[2];
  cr_assert_eq(kv_context_get(c, context, 2, &len), KV_ERR_BUFFER);
  cr_assert_eq(len, 3);
  cr_assert_eq(kv_context_get(c, nullptr, 0, &len), KV_ERR_BUFFER);
  const uint64_t session[] = {0, 9, 0};
  cr_assert_eq(kv_context_set(c, session, 3), KV_OK);
  cr_assert_eq(kv_del(c, "x", 1), KV_OK);
  cr_assert_eq(kv_get(c, "x", 1, nullptr, nullptr, nullptr), KV_NOT_FOUND);
  cr_assert(store.last_context == (Context{3, 9, 0}), "set, then merged with the delete");
  kv_close(c);
}

Test(kvclient, pipelining) {
  FakeStore store;
  FakeServer server(store.Handler());
  kv_client* c = nullptr;
  cr_assert_eq(kv_connect(server.address().c_str(), 2000, &c), KV_OK);
  uint64_t first = 0;
  cr_assert_eq(kv_send_put(c, "a", 1, "1", 1, &first), KV_OK);
  cr_assert_eq(kv_send_get(c, "a", 1, nullptr), KV_OK);
  cr_assert_eq(kv_send_get(c, "b", 1, nullptr), KV_OK);
  cr_assert_eq(kv_pending(c), 3);
  cr_assert_eq(kv_put(c, "z", 1, "", 0), KV_ERR_INVALID, "blocking call during a pipeline");
  cr_assert_eq(kv_flush(c), KV_OK);
  kv_reply reply;
  cr_assert_eq(kv_recv_reply(c, &reply), KV_OK);
  cr_assert_eq(reply.request_id, first);
  cr_assert_eq(reply.status, KV_OK);
  kv_reply_clear(&reply);
  cr_assert_eq(kv_recv_reply(c, &reply), KV_OK);
  cr_assert_eq(reply.found, 1);
  cr_assert_eq(reply.value_len, 1);
  cr_assert_str_eq(reply.value, "1");
  kv_reply_clear(&reply);
  cr_assert_eq(kv_recv_reply(c, &reply), KV_OK);
  cr_assert_eq(reply.status, KV_NOT_FOUND);
  kv_reply_clear(&reply);
  cr_assert_eq(kv_pending(c), 0);
  kv_close(c);
}

Test(kvclient, raw_frames_and_close) {
  FakeServer server([](const fb::Envelope& env, wire::Encoder& enc, std::string* out) {
    enc.Encode(env.request_id(),
               wire::ErrorFields{fb::Status::BAD_REQUEST, "context has 2 entries"}, out);
    return Action{.close = true};
  });
  kv_client* c = nullptr;
  cr_assert_eq(kv_connect(server.address().c_str(), 2000, &c), KV_OK);
  unsigned char* frame = nullptr;
  size_t frame_len = 0;
  const uint64_t context[] = {1, 2};
  cr_assert_eq(
      kv_encode_request(KV_MSG_GET_REQUEST, 42, "x", 1, nullptr, 0, context, 2, &frame, &frame_len),
      KV_OK);
  cr_assert_gt(frame_len, 8);
  uint32_t prefix = 0;
  std::memcpy(&prefix, frame, 4);
  cr_assert_eq(prefix + 4, frame_len);
  cr_assert_eq(kv_send_raw(c, frame, frame_len), KV_OK);
  kv_free(frame);
  cr_assert_eq(kv_is_closed(c, 2000), 1);
  kv_frame f;
  cr_assert_eq(kv_recv_raw_frame(c, 1000, &f), KV_OK);
  cr_assert_eq(f.type, KV_MSG_ERROR);
  cr_assert_eq(f.request_id, 42);
  cr_assert_eq(f.status, KV_BAD_REQUEST);
  cr_assert_str_eq(f.message, "context has 2 entries");
  uint32_t error_prefix = 0;
  std::memcpy(&error_prefix, f.bytes, 4);
  cr_assert_eq(error_prefix + 4, f.size, "bytes hold the whole frame");
  kv_frame_clear(&f);
  cr_assert_eq(kv_recv_raw_frame(c, 1000, &f), KV_ERR_CONNECTION);
  kv_close(c);
}

Test(kvclient, raw_receive_times_out_without_breaking) {
  FakeServer server([](const fb::Envelope&, wire::Encoder&, std::string*) { return Action{}; });
  kv_client* c = nullptr;
  cr_assert_eq(kv_connect(server.address().c_str(), 2000, &c), KV_OK);
  kv_frame f;
  cr_assert_eq(kv_recv_raw_frame(c, 50, &f), KV_ERR_TIMEOUT);
  cr_assert_eq(kv_is_closed(c, 50), 0);
  kv_close(c);
}

Test(kvclient, status_struct) {
  FakeServer server([](const fb::Envelope& env, wire::Encoder& enc, std::string* out) {
    const uint64_t clock[] = {3, 1, 0};
    wire::PeerStatusFields peers[] = {{0, "127.0.0.1:7001", true, false, false, clock},
                                      {2, "127.0.0.1:7003", true, true, true, {}}};
    wire::StatusReplyFields fields{1, clock, 0, 7, true, peers, 2};
    fields.loop = {1'001'000, 500'000, 400'000, 6000, 2500, 75'000};
    enc.Encode(env.request_id(), fields, out);
    return Action{};
  });
  kv_client* c = nullptr;
  cr_assert_eq(kv_connect(server.address().c_str(), 2000, &c), KV_OK);
  kv_node_status status;
  cr_assert_eq(kv_status(c, &status), KV_OK);
  cr_assert_eq(status.id, 2);
  cr_assert_eq(status.clock_len, 3);
  cr_assert_eq(status.keys, 7);
  cr_assert_eq(status.peer_count, 2);
  cr_assert_eq(status.peers[0].id, 1);
  cr_assert_str_eq(status.peers[0].address, "127.0.0.1:7001");
  cr_assert_eq(status.peers[0].acked_len, 3);
  cr_assert_eq(status.peers[1].held, 1);
  cr_assert_eq(status.peers[1].acked_len, 0);
  cr_assert_eq(status.loop.reported, 1);
  cr_assert_eq(status.loop.window_us, 1'001'000);
  cr_assert_eq(status.loop.busy_us, 500'000);
  cr_assert_eq(status.loop.cpu_us, 400'000);
  cr_assert_eq(status.loop.cpu_wait_us, 75'000);
  cr_assert_eq(status.loop.turns, 6000);
  cr_assert_eq(status.loop.longest_turn_us, 2500);
  uint64_t buffered = 99;
  cr_assert_eq(kv_buffer_count(c, &buffered), KV_OK);
  cr_assert_eq(buffered, 0);
  kv_close(c);
}

Test(kvclient, connect_failure_message) {
  kv_client* c = reinterpret_cast<kv_client*>(1);
  cr_assert_eq(kv_connect(DeadAddress().c_str(), 1000, &c), KV_ERR_CONNECTION);
  cr_assert_null(c);
  cr_assert(std::strstr(kv_errmsg(nullptr), "refused") != nullptr, "%s", kv_errmsg(nullptr));
}
