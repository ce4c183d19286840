#include "ctl/client.h"

#include <algorithm>
#include <utility>

#include "ctl/connection.h"
#include "schema/view.h"

namespace kvd::client {
namespace {

// Keys and values above this cannot be encoded in one FlatBuffer frame.
constexpr size_t kSendBytesMax = wire::kFrameBytesMaxLimit - 4096;

Context CopyClock(const flatbuffers::Vector<uint64_t>* clock) {
  std::span<const uint64_t> view = wire::AsClock(clock);
  return Context(view.begin(), view.end());
}

Error Protocol(const std::string& message) { return {Code::kProtocol, message}; }

const char* KindName(RequestKind kind) {
  switch (kind) {
    case RequestKind::kPut:
      return "put";
    case RequestKind::kGet:
      return "get";
    case RequestKind::kDelete:
      return "delete";
    case RequestKind::kStatus:
      return "status";
    case RequestKind::kBuffer:
      return "buffer";
    case RequestKind::kLink:
      return "link";
    case RequestKind::kShutdown:
      return "shutdown";
    case RequestKind::kSnapshot:
      return "snapshot";
    case RequestKind::kAuth:
      return "password";
  }
  return "request";
}

Error UnexpectedType(RequestKind kind, const fb::Envelope& envelope) {
  return Protocol(std::string("unexpected ") + fb::EnumNameMessage(envelope.message_type()) +
                  " in answer to a " + KindName(kind) + " request");
}

// An AdminReply in answer to a request expecting something else: its
// status, when it refuses the request (for example UNAUTHORIZED over TCP).
Error AdminRefusal(RequestKind kind, const fb::Envelope& envelope) {
  const fb::AdminReply* admin = envelope.message_as_AdminReply();
  if (admin->status() == fb::Status::OK) return UnexpectedType(kind, envelope);
  return {CodeFromWire(static_cast<uint8_t>(admin->status())),
          std::string(wire::AsText(admin->message()))};
}

}  // namespace

void MergeInto(Context* into, std::span<const uint64_t> other) {
  if (into->size() < other.size()) into->resize(other.size(), 0);
  for (size_t i = 0; i < other.size(); ++i) (*into)[i] = std::max((*into)[i], other[i]);
}

bool Covers(std::span<const uint64_t> clock, std::span<const uint64_t> context) {
  for (size_t i = 0; i < context.size(); ++i) {
    uint64_t have = i < clock.size() ? clock[i] : 0;
    if (have < context[i]) return false;
  }
  return true;
}

Result<Client> Client::Connect(std::string_view address, const Options& options) {
  Result<Endpoint> endpoint = ParseAddress(address);
  if (!endpoint.ok()) return endpoint.error();
  return Connect(*endpoint, options);
}

Result<Client> Client::Connect(const Endpoint& endpoint, const Options& options) {
  auto connection = Connection::Open(endpoint, Deadline::After(options.connect_timeout_ms),
                                     options.frame_bytes_max);
  if (!connection.ok()) return connection.error();
  Client client(std::move(connection).value(), options);
  if (!options.password.empty()) {
    if (auto auth = client.Authenticate(options.password); !auth.ok()) return auth.error();
  }
  return client;
}

Client::Client(std::unique_ptr<Connection> connection, const Options& options)
    : connection_(std::move(connection)),
      options_(options),
      encoder_(std::make_unique<wire::Encoder>()) {
  // The client does not know the cluster size or the server's key and
  // value caps: the frame cap bounds what the server may send.
  limits_.cluster_size = 0;
  limits_.frame_bytes_max = options.frame_bytes_max;
  limits_.key_bytes_max = options.frame_bytes_max;
  limits_.value_bytes_max = options.frame_bytes_max;
}

Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

// --- Plumbing ------------------------------------------------------------------------

Error Client::Fail(Error error) {
  failure_ = std::make_unique<Error>(error);
  return error;
}

Error Client::ServerError(uint8_t status, std::string_view message) {
  // The server closes the connection after an Error frame.
  Error error{CodeFromWire(status), std::string(message)};
  if (error.code == Code::kProtocol) error.message = "Error frame: " + error.message;
  return Fail(error);
}

Result<void> Client::ReadyToSend() const {
  if (failure_) {
    return Error{Code::kConnection,
                 "connection unusable after an earlier error (" + failure_->ToString() + ")"};
  }
  return {};
}

Result<void> Client::ReadyForCall() const {
  if (auto ready = ReadyToSend(); !ready.ok()) return ready;
  if (!pending_.empty()) {
    return Error{Code::kInvalidArgument,
                 std::to_string(pending_.size()) + " pipelined replies not yet received"};
  }
  return {};
}

Result<void> Client::CheckSendable(std::string_view key, std::string_view value) const {
  if (key.size() + value.size() > kSendBytesMax) {
    return Error{Code::kInvalidArgument, "key and value too large to send (" +
                                             std::to_string(key.size() + value.size()) + " bytes)"};
  }
  return ReadyToSend();
}

template <typename Fields>
uint64_t Client::Queue(RequestKind kind, const Fields& fields) {
  uint64_t request_id = next_request_id_++;
  encoder_->Encode(request_id, fields, &connection_->output());
  pending_.push_back({request_id, kind});
  return request_id;
}

Error Client::FailAfterSend(Error error) {
  // The server may have explained itself (an Error frame) before closing.
  Result<wire::Frame> frame = connection_->NextFrame(Deadline::Now(), limits_);
  if (frame.ok() && frame->envelope->message_type() == fb::Message::Error) {
    const fb::Error* server = frame->envelope->message_as_Error();
    return ServerError(static_cast<uint8_t>(server->status()), wire::AsText(server->message()));
  }
  return Fail(std::move(error));
}

template <typename T, typename Fields, typename Take>
Result<T> Client::Call(RequestKind kind, const Fields& fields, Take take) {
  if (auto ready = ReadyForCall(); !ready.ok()) return ready.error();
  Deadline deadline = Deadline::After(options_.request_timeout_ms);
  uint64_t request_id = Queue(kind, fields);
  Pending pending = pending_.back();
  pending_.clear();
  if (auto sent = connection_->Flush(deadline); !sent.ok()) return FailAfterSend(sent.error());
  Result<wire::Frame> frame = connection_->NextFrame(deadline, limits_);
  if (!frame.ok()) return Fail(frame.error());
  const fb::Envelope& envelope = *frame->envelope;
  if (envelope.message_type() == fb::Message::Error) {
    const fb::Error* error = envelope.message_as_Error();
    return ServerError(static_cast<uint8_t>(error->status()), wire::AsText(error->message()));
  }
  if (envelope.request_id() != request_id) {
    return Fail(Protocol("reply to request " + std::to_string(envelope.request_id()) +
                         ", expected " + std::to_string(request_id)));
  }
  return take(pending, envelope);
}

Reply Client::TakeReply(const Pending& pending, const fb::Envelope& envelope) {
  const fb::Reply* in = envelope.message_as_Reply();
  Reply reply;
  reply.request_id = pending.request_id;
  reply.kind = pending.kind;
  reply.status = CodeFromWire(static_cast<uint8_t>(in->status()));
  reply.message = std::string(wire::AsText(in->message()));
  reply.found = in->found();
  reply.value = std::string(wire::AsBytes(in->value()));
  reply.version = CopyClock(in->version());
  if (reply.status == Code::kOk || reply.status == Code::kNotFound) {
    MergeInto(&context_, reply.version);
    last_reply_ = reply;
  }
  return reply;
}

Result<void> Client::Authenticate(std::string_view password) {
  return Call<void>(RequestKind::kAuth, wire::ClientAuthFields{password},
                    [this](const Pending& pending, const fb::Envelope& envelope) -> Result<void> {
                      if (envelope.message_type() != fb::Message::Reply) {
                        return Fail(UnexpectedType(pending.kind, envelope));
                      }
                      const fb::Reply* reply = envelope.message_as_Reply();
                      if (reply->status() == fb::Status::OK) return {};
                      return Error{CodeFromWire(static_cast<uint8_t>(reply->status())),
                                   std::string(wire::AsText(reply->message()))};
                    });
}

// --- Key-value requests -------------------------------------------------------------

namespace {

// The blocking calls' view of a Reply: OK and NOT_FOUND are answers, other
// statuses are errors (the connection stays usable).
Result<Reply> AnswerOrError(Reply reply) {
  if (reply.status == Code::kOk || reply.status == Code::kNotFound) return reply;
  return Error{reply.status, std::move(reply.message)};
}

}  // namespace

Result<Reply> Client::Put(std::string_view key, std::string_view value) {
  if (auto ok = CheckSendable(key, value); !ok.ok()) return ok.error();
  return Call<Reply>(RequestKind::kPut, wire::PutRequestFields{key, value, context_},
                     [this](const Pending& pending, const fb::Envelope& envelope) -> Result<Reply> {
                       if (envelope.message_type() != fb::Message::Reply) {
                         return Fail(UnexpectedType(pending.kind, envelope));
                       }
                       return AnswerOrError(TakeReply(pending, envelope));
                     });
}

Result<Reply> Client::Get(std::string_view key) {
  if (auto ok = CheckSendable(key, {}); !ok.ok()) return ok.error();
  return Call<Reply>(RequestKind::kGet, wire::GetRequestFields{key, context_},
                     [this](const Pending& pending, const fb::Envelope& envelope) -> Result<Reply> {
                       if (envelope.message_type() != fb::Message::Reply) {
                         return Fail(UnexpectedType(pending.kind, envelope));
                       }
                       return AnswerOrError(TakeReply(pending, envelope));
                     });
}

Result<Reply> Client::Delete(std::string_view key) {
  if (auto ok = CheckSendable(key, {}); !ok.ok()) return ok.error();
  return Call<Reply>(RequestKind::kDelete, wire::DeleteRequestFields{key, context_},
                     [this](const Pending& pending, const fb::Envelope& envelope) -> Result<Reply> {
                       if (envelope.message_type() != fb::Message::Reply) {
                         return Fail(UnexpectedType(pending.kind, envelope));
                       }
                       return AnswerOrError(TakeReply(pending, envelope));
                     });
}

// --- Administration -----------------------------------------------------------------

Result<NodeStatus> Client::Status() {
  return Call<NodeStatus>(
      RequestKind::kStatus, wire::StatusRequestFields{},
      [this](const Pending& pending, const fb::Envelope& envelope) -> Result<NodeStatus> {
        if (envelope.message_type() == fb::Message::AdminReply) {
          return AdminRefusal(pending.kind, envelope);
        }
        if (envelope.message_type() != fb::Message::StatusReply) {
          return Fail(UnexpectedType(pending.kind, envelope));
        }
        const fb::StatusReply* in = envelope.message_as_StatusReply();
        NodeStatus status;
        status.node_index = in->node_index();
        status.clock = CopyClock(in->clock());
        status.buffered = in->buffered();
        status.keys = in->keys();
        status.accepting_writes = in->accepting_writes();
        status.log_entries = in->log_entries();
        status.cluster_id = std::string(wire::AsText(in->cluster_id()));
        if (const fb::LoopStatus* loop = in->loop()) {
          status.loop = {true,          loop->window_us(),       loop->busy_us(),    loop->cpu_us(),
                         loop->turns(), loop->longest_turn_us(), loop->cpu_wait_us()};
        }
        if (in->peers() != nullptr) {
          for (const fb::PeerStatus* peer : *in->peers()) {
            status.peers.push_back({peer->node_index(), std::string(wire::AsText(peer->address())),
                                    peer->connected_out(), peer->connected_in(), peer->held(),
                                    CopyClock(peer->acked())});
          }
        }
        return status;
      });
}

Result<BufferListing> Client::Buffer(uint32_t limit) {
  return Call<BufferListing>(
      RequestKind::kBuffer, wire::BufferRequestFields{limit},
      [this](const Pending& pending, const fb::Envelope& envelope) -> Result<BufferListing> {
        if (envelope.message_type() == fb::Message::AdminReply) {
          return AdminRefusal(pending.kind, envelope);
        }
        if (envelope.message_type() != fb::Message::BufferReply) {
          return Fail(UnexpectedType(pending.kind, envelope));
        }
        const fb::BufferReply* in = envelope.message_as_BufferReply();
        BufferListing listing;
        listing.total = in->total();
        if (in->entries() != nullptr) {
          for (const fb::BufferedWrite* entry : *in->entries()) {
            BufferedWrite write{entry->origin(),
                                entry->seq(),
                                std::string(wire::AsBytes(entry->key())),
                                entry->is_delete(),
                                {}};
            if (entry->missing() != nullptr) {
              for (const fb::MissingRange* range : *entry->missing()) {
                write.missing.push_back({range->origin(), range->seq_first(), range->seq_last()});
              }
            }
            listing.entries.push_back(std::move(write));
          }
        }
        return listing;
      });
}

namespace {

// AdminReply OK -> success; another status -> that error.
Result<void> AdminOutcome(const fb::Envelope& envelope) {
  const fb::AdminReply* reply = envelope.message_as_AdminReply();
  if (reply->status() == fb::Status::OK) return {};
  return Error{CodeFromWire(static_cast<uint8_t>(reply->status())),
               std::string(wire::AsText(reply->message()))};
}

}  // namespace

Result<void> Client::Link(uint32_t peer_index, bool hold) {
  return Call<void>(RequestKind::kLink, wire::LinkRequestFields{peer_index, hold},
                    [this](const Pending& pending, const fb::Envelope& envelope) -> Result<void> {
                      if (envelope.message_type() != fb::Message::AdminReply) {
                        return Fail(UnexpectedType(pending.kind, envelope));
                      }
                      return AdminOutcome(envelope);
                    });
}

Result<void> Client::Shutdown() {
  return Call<void>(RequestKind::kShutdown, wire::ShutdownRequestFields{},
                    [this](const Pending& pending, const fb::Envelope& envelope) -> Result<void> {
                      if (envelope.message_type() != fb::Message::AdminReply) {
                        return Fail(UnexpectedType(pending.kind, envelope));
                      }
                      return AdminOutcome(envelope);
                    });
}

Result<std::string> Client::Snapshot() {
  return Call<std::string>(
      RequestKind::kSnapshot, wire::SnapshotRequestFields{},
      [this](const Pending& pending, const fb::Envelope& envelope) -> Result<std::string> {
        if (envelope.message_type() != fb::Message::AdminReply) {
          return Fail(UnexpectedType(pending.kind, envelope));
        }
        if (Result<void> outcome = AdminOutcome(envelope); !outcome.ok()) return outcome.error();
        return std::string(wire::AsText(envelope.message_as_AdminReply()->message()));
      });
}

// --- Pipelining ---------------------------------------------------------------------

Result<uint64_t> Client::SendPut(std::string_view key, std::string_view value) {
  if (auto ok = CheckSendable(key, value); !ok.ok()) return ok.error();
  return Queue(RequestKind::kPut, wire::PutRequestFields{key, value, context_});
}

Result<uint64_t> Client::SendGet(std::string_view key) {
  if (auto ok = CheckSendable(key, {}); !ok.ok()) return ok.error();
  return Queue(RequestKind::kGet, wire::GetRequestFields{key, context_});
}

Result<uint64_t> Client::SendDelete(std::string_view key) {
  if (auto ok = CheckSendable(key, {}); !ok.ok()) return ok.error();
  return Queue(RequestKind::kDelete, wire::DeleteRequestFields{key, context_});
}

Result<void> Client::Flush() {
  if (auto ready = ReadyToSend(); !ready.ok()) return ready;
  auto sent = connection_->Flush(Deadline::After(options_.request_timeout_ms));
  if (!sent.ok()) return FailAfterSend(sent.error());
  return {};
}

Result<Reply> Client::ReceiveReply() {
  if (auto ready = ReadyToSend(); !ready.ok()) return ready.error();
  if (pending_.empty()) return Error{Code::kInvalidArgument, "no request awaits a reply"};
  Deadline deadline = Deadline::After(options_.request_timeout_ms);
  if (connection_->unsent_bytes() > 0) {
    if (auto sent = connection_->Flush(deadline); !sent.ok()) return FailAfterSend(sent.error());
  }
  Result<wire::Frame> frame = connection_->NextFrame(deadline, limits_);
  if (!frame.ok()) return Fail(frame.error());
  Pending pending = pending_.front();
  pending_.pop_front();
  const fb::Envelope& envelope = *frame->envelope;
  if (envelope.message_type() == fb::Message::Error) {
    const fb::Error* error = envelope.message_as_Error();
    return ServerError(static_cast<uint8_t>(error->status()), wire::AsText(error->message()));
  }
  if (envelope.request_id() != pending.request_id) {
    return Fail(Protocol("reply to request " + std::to_string(envelope.request_id()) +
                         ", expected " + std::to_string(pending.request_id)));
  }
  if (envelope.message_type() != fb::Message::Reply) {
    return Fail(UnexpectedType(pending.kind, envelope));
  }
  return TakeReply(pending, envelope);
}

// --- Raw access ----------------------------------------------------------------------

Result<void> Client::SendRaw(std::string_view bytes) {
  connection_->output().append(bytes);
  return connection_->Flush(Deadline::After(options_.request_timeout_ms));
}

Result<RawFrame> Client::ReceiveRawFrame(int timeout_ms) {
  Result<wire::Frame> frame = connection_->NextFrame(Deadline::After(timeout_ms), limits_);
  if (!frame.ok()) return frame.error();
  const fb::Envelope& envelope = *frame->envelope;
  RawFrame raw;
  raw.request_id = envelope.request_id();
  raw.type = static_cast<uint8_t>(envelope.message_type());
  raw.bytes.assign(reinterpret_cast<const char*>(frame->bytes), frame->size);
  switch (envelope.message_type()) {
    case fb::Message::Reply: {
      const fb::Reply* reply = envelope.message_as_Reply();
      raw.status = static_cast<uint8_t>(reply->status());
      raw.message = std::string(wire::AsText(reply->message()));
      raw.found = reply->found();
      raw.value = std::string(wire::AsBytes(reply->value()));
      raw.version = CopyClock(reply->version());
      break;
    }
    case fb::Message::AdminReply: {
      const fb::AdminReply* reply = envelope.message_as_AdminReply();
      raw.status = static_cast<uint8_t>(reply->status());
      raw.message = std::string(wire::AsText(reply->message()));
      break;
    }
    case fb::Message::Error: {
      const fb::Error* error = envelope.message_as_Error();
      raw.status = static_cast<uint8_t>(error->status());
      raw.message = std::string(wire::AsText(error->message()));
      break;
    }
    default:
      break;
  }
  return raw;
}

bool Client::WaitClosed(int timeout_ms) {
  return connection_->WaitClosed(Deadline::After(timeout_ms));
}

}  // namespace kvd::client
