// peer_auth_test.cc: peer authentication and the client password, with real
// kvd processes. In most cases the test itself plays node 3 of a 3-node
// cluster whose nodes 1 and 2 run kvd with a cluster secret: it speaks the
// handshake and seals frames with its own HMAC code written from
// PROTOCOL.md (section 9), not with schema/auth.cc, so the daemon is
// checked against the documented protocol. Each attack must be refused,
// logged once, and leave no trace in the node's state.
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "schema/encoder.h"
#include "schema/fingerprint.h"
#include "schema/frame.h"
#include "schema/view.h"
#include "tests/integration/cluster.h"

namespace {

using kvd::fb::Message;
namespace wire = kvd::wire;

const char* const kSecret = "integration-test cluster secret, 0123456789";
constexpr uint32_t kSelf = 2;  // The test is node 3 (index 2); it talks to n1 (index 0).

// --- PROTOCOL.md section 9, written out independently --------------------------------

std::string Le(uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}

std::string Hmac(const std::string& key, const std::string& message) {
  unsigned char out[32];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &length);
  cr_assert_eq(length, 32u);
  return std::string(reinterpret_cast<char*>(out), 32);
}

struct Transcript {
  uint64_t fingerprint;
  uint32_t dialer, acceptor;
  std::string dialer_nonce, acceptor_nonce;

  std::string Bytes(const char* label) const {
    return std::string(label) + std::string(1, '\0') + Le(fingerprint, 8) + Le(dialer, 4) +
           Le(acceptor, 4) + dialer_nonce + acceptor_nonce;
  }
};

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  cr_assert_eq(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)), 1);
  return out;
}

// Seals or opens frames of one direction: a tag of HMAC(key, seq || frame)
// counted in the size prefix.
struct Mac {
  std::string key;
  uint64_t seq = 0;

  std::string Seal(std::string frame) {
    uint32_t length = 0;
    std::memcpy(&length, frame.data(), 4);
    length += 32;
    std::memcpy(frame.data(), &length, 4);
    frame += Hmac(key, Le(seq++, 8) + frame);
    return frame;
  }
  // The plain frame, or nullopt if the tag is wrong.
  std::optional<std::string> Open(const std::string& sealed) {
    if (sealed.size() < 4 + 32) return std::nullopt;
    std::string body = sealed.substr(0, sealed.size() - 32);
    if (Hmac(key, Le(seq, 8) + body) != sealed.substr(sealed.size() - 32)) return std::nullopt;
    ++seq;
    uint32_t length = 0;
    std::memcpy(&length, body.data(), 4);
    length -= 32;
    std::memcpy(body.data(), &length, 4);
    return body;
  }
};

// --- Frames ------------------------------------------------------------------------------

template <typename Fields>
std::string Encode(const Fields& fields, uint64_t request_id = 0) {
  wire::Encoder encoder;
  std::string out;
  encoder.Encode(request_id, fields, &out);
  return out;
}

// A batch with one write `key`=`value`, sequence `seq` at origin n3.
std::string Batch(uint64_t seq, const char* key, const char* value) {
  const uint64_t clock[] = {0, 0, seq};
  const wire::WriteFields write[] = {{.origin = kSelf, .clock = clock, .key = key, .value = value}};
  return Encode(wire::WriteBatchFields{.writes = write});
}

// What the test reads back from n1: the frame and what it says.
struct Received {
  Message type = Message::NONE;
  int status = -1;
  std::string message;
  std::vector<uint64_t> clock;
  std::string nonce, auth;
};

Received Parse(const std::string& frame) {
  wire::FrameDecoder decoder(wire::kFrameBytesMaxDefault);
  decoder.Feed(frame.data(), frame.size());
  wire::DecodeResult r = decoder.Next();
  cr_assert_eq(r.kind, wire::DecodeResult::Kind::kFrame, "n1 sent an unverifiable frame: %s",
               r.error.message.c_str());
  const kvd::fb::Envelope& e = *r.frame.envelope;
  Received out;
  out.type = e.message_type();
  if (const auto* m = e.message_as_Error()) {
    out.status = static_cast<int>(m->status());
    out.message = std::string(wire::AsText(m->message()));
  } else if (const auto* m = e.message_as_HelloAck()) {
    std::span<const uint64_t> clock = wire::AsClock(m->clock());
    out.clock.assign(clock.begin(), clock.end());
    out.nonce = std::string(wire::AsBytes(m->nonce()));
    out.auth = std::string(wire::AsBytes(m->auth()));
  } else if (const auto* m = e.message_as_Ack()) {
    std::span<const uint64_t> clock = wire::AsClock(m->clock());
    out.clock.assign(clock.begin(), clock.end());
  } else if (const auto* m = e.message_as_Hello()) {
    out.nonce = std::string(wire::AsBytes(m->nonce()));
  }
  return out;
}

uint64_t Fingerprint() {
  std::vector<std::string> addresses;
  for (int id = 1; id <= kvt_size(); ++id) addresses.push_back(kvt_node_at(id)->address);
  return wire::ClusterFingerprint(addresses);
}

// --- A fake peer on one TCP connection ---------------------------------------------------

class Conn {
 public:
  explicit Conn(int fd) : fd_(fd) {}
  static Conn Dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0,
                 "connect: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return Conn(fd);
  }
  Conn(Conn&& other) noexcept
      : fd_(other.fd_),
        transcript_(other.transcript_),
        hello_(other.hello_),
        proof_(other.proof_),
        sealed_(other.sealed_),
        out_(other.out_),
        in_(other.in_) {
    other.fd_ = -1;
  }
  ~Conn() {
    if (fd_ >= 0) close(fd_);
  }

  void Send(const std::string& bytes) {
    cr_assert_eq(send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), (ssize_t)bytes.size());
  }
  // Sends a frame, sealed once the handshake is done.
  void SendFrame(const std::string& frame) { Send(sealed_ ? out_.Seal(frame) : frame); }

  // The next whole frame as sent (sealed or not), or nullopt if the peer
  // closed or nothing came within timeout_ms.
  std::optional<std::string> ReadFrame(int timeout_ms) {
    std::string prefix;
    if (!ReadExactly(4, timeout_ms, &prefix)) return std::nullopt;
    uint32_t length = 0;
    std::memcpy(&length, prefix.data(), 4);
    cr_assert_leq(length, 1u << 20, "n1 sent a frame of %u bytes", length);
    std::string body;
    if (!ReadExactly(length, timeout_ms, &body)) return std::nullopt;
    return prefix + body;
  }
  // The next frame, opened if the link is sealed (a wrong tag fails the test).
  std::optional<Received> Next(int timeout_ms = 3000) {
    std::optional<std::string> frame = ReadFrame(timeout_ms);
    if (!frame) return std::nullopt;
    if (!sealed_) return Parse(*frame);
    std::optional<std::string> plain = in_.Open(*frame);
    cr_assert(plain.has_value(), "a frame from n1 failed our authentication check");
    return Parse(*plain);
  }
  // True if the other end closes within timeout_ms (frames before the
  // close are skipped).
  bool Closed(int timeout_ms) {
    double deadline = kvt_now_ms() + timeout_ms;
    char buffer[4096];
    for (;;) {
      int left = static_cast<int>(deadline - kvt_now_ms());
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, left) <= 0) continue;
      ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return true;
    }
  }

  // Starts the handshake as node index `self` (Hello with a fresh nonce),
  // reads n1's HelloAck and checks its proof (n1 has kSecret).
  Received Hello(uint32_t self = kSelf) {
    transcript_ = {Fingerprint(), self, 0, RandomBytes(32), ""};
    hello_ = Encode(wire::HelloFields{.cluster_fingerprint = transcript_.fingerprint,
                                      .node_index = self,
                                      .nonce = transcript_.dialer_nonce});
    Send(hello_);
    std::optional<Received> ack = Next();
    cr_assert(ack.has_value(), "no answer to our hello");
    cr_assert_eq(ack->type, Message::HelloAck, "answer %s: %s", kvd::fb::EnumNameMessage(ack->type),
                 ack->message.c_str());
    cr_assert_eq(ack->nonce.size(), 32u);
    transcript_.acceptor_nonce = ack->nonce;
    std::string clock;
    for (uint64_t c : ack->clock) clock += Le(c, 8);
    cr_assert_eq(ack->auth, Hmac(kSecret, transcript_.Bytes("causalkv-v1 acceptor proof") + clock),
                 "n1's HelloAck proof is not what PROTOCOL.md says");
    return *ack;
  }
  // Our HelloProof under `secret`, for the transcript of the last Hello().
  std::string ProofFrame(const std::string& secret) const {
    return Encode(wire::HelloProofFields{
        .auth = Hmac(secret, transcript_.Bytes("causalkv-v1 dialer proof"))});
  }
  // Sends the proof, seals from then on, and waits for n1's first sealed Ack.
  void Prove() {
    proof_ = ProofFrame(kSecret);
    Send(proof_);
    out_ = {Hmac(kSecret, transcript_.Bytes("causalkv-v1 key dialer->acceptor"))};
    in_ = {Hmac(kSecret, transcript_.Bytes("causalkv-v1 key acceptor->dialer"))};
    sealed_ = true;
    std::optional<Received> ack = Next();
    cr_assert(ack.has_value(), "n1 did not confirm our proof");
    cr_assert_eq(ack->type, Message::Ack, "n1 confirmed with %s",
                 kvd::fb::EnumNameMessage(ack->type));
  }
  void Handshake() {
    Hello();
    Prove();
  }

  Mac& out() { return out_; }
  const std::string& hello_bytes() const { return hello_; }
  const std::string& proof_bytes() const { return proof_; }
  void set_sealed(bool sealed) { sealed_ = sealed; }

 private:
  bool ReadExactly(size_t n, int timeout_ms, std::string* out) {
    double deadline = kvt_now_ms() + timeout_ms;
    while (out->size() < n) {
      int left = static_cast<int>(deadline - kvt_now_ms());
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, left) <= 0) continue;
      char buffer[65536];
      ssize_t got = recv(fd_, buffer, std::min(sizeof(buffer), n - out->size()), 0);
      if (got == 0) return false;
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return false;
      }
      out->append(buffer, static_cast<size_t>(got));
    }
    return true;
  }

  int fd_;
  Transcript transcript_{};
  std::string hello_, proof_;
  bool sealed_ = false;
  Mac out_, in_;
};

// --- The cluster: n1, n2 with the secret; n3 is the test ---------------------------------

void StartWithTestAsN3() {
  kvt_options options;
  std::memset(&options, 0, sizeof(options));
  options.port[2] = kvt_free_port();  // Nothing of ours listens there unless a test does.
  options.cluster_secret[0] = kSecret;
  options.cluster_secret[1] = kSecret;
  options.bootstrap = 1;  // n3 is the test: the cluster never meets it.
  kvt_start_with(&options);
}

const kv_peer_status* PeerOf(const kv_node_status& st, uint32_t id) {
  for (size_t i = 0; i < st.peer_count; ++i) {
    if (st.peers[i].id == id) return &st.peers[i];
  }
  cr_assert_fail("n%u is no peer", id);
  return nullptr;
}

// n1 counts no link from n3, has nothing of n3's, and has no such key.
void ExpectNoTrace(const char* key) {
  kv_node_status st;
  kvt_status(1, &st);
  cr_assert_eq(st.clock[2], 0u, "n1 applied a write of n3");
  cr_assert_not(PeerOf(st, 3)->connected_in, "n1 counts a link from n3");
  if (key != nullptr) {
    kv_client* c = kvt_client(1);
    char value[64];
    cr_assert_eq(kvt_get(c, key, value, sizeof(value)), KV_NOT_FOUND, "n1 has %s=%s", key, value);
    kv_close(c);
  }
}

// Waits until n1 no longer counts a link from n3 (after the test closed one).
void AwaitUnlinked() {
  double deadline = kvt_now_ms() + KVT_WAIT_TIMEOUT_MS;
  for (;;) {
    kv_node_status st;
    kvt_status(1, &st);
    if (!PeerOf(st, 3)->connected_in) return;
    cr_assert_lt(kvt_now_ms(), deadline, "n1 still counts the closed link from n3");
    kvt_sleep_ms(10);
  }
}

void ExpectRefused(Conn& conn, const char* why) {
  std::optional<Received> error = conn.Next();
  cr_assert(error.has_value(), "%s: no Error before the close", why);
  cr_assert_eq(error->type, Message::Error, "%s: got %s", why,
               kvd::fb::EnumNameMessage(error->type));
  cr_assert_eq(error->status, KV_UNAUTHORIZED, "%s: status %d (%s)", why, error->status,
               error->message.c_str());
  cr_assert(conn.Closed(3000), "%s: n1 kept the connection open", why);
}

}  // namespace

TestSuite(peer_auth, .fini = kvt_cleanup, .timeout = 60);

Test(peer_auth, right_secret_replicates) {
  kvt_options options;
  std::memset(&options, 0, sizeof(options));
  for (int i = 0; i < 3; ++i) options.cluster_secret[i] = kSecret;
  kvt_start_with(&options);  // Waits for every link: each handshake succeeded.
  kv_client* c1 = kvt_client(1);
  kvt_put(c1, "x", "1");
  kv_close(c1);
  cr_assert(kvt_wait_converged(KVT_WAIT_TIMEOUT_MS));
  kv_client* c3 = kvt_client(3);
  char value[16];
  cr_assert_eq(kvt_get(c3, "x", value, sizeof(value)), KV_OK);
  cr_assert_str_eq(value, "1");
  kv_close(c3);
  cr_assert_geq(kvt_log_count(1, "linked to us (authenticated)"), 2);
  cr_assert_geq(kvt_log_count(1, "connected (authenticated)"), 2);
  kvt_stop();
}

Test(peer_auth, wrong_secret_links_nothing) {
  kvt_options options;
  std::memset(&options, 0, sizeof(options));
  options.cluster_secret[0] = kSecret;
  options.cluster_secret[1] = kSecret;
  options.cluster_secret[2] = "another cluster's secret, 0123456789";
  options.no_link_wait = 1;
  options.bootstrap = 1;  // n1 and n2 never hear n3.
  kvt_start_with(&options);
  kv_client* c1 = kvt_client(1);
  kvt_put(c1, "x", "1");
  kv_close(c1);
  // n2 gets the write; n3 never links either way.
  kv_client* c2 = kvt_client(2);
  double deadline = kvt_now_ms() + KVT_WAIT_TIMEOUT_MS;
  char value[16];
  while (kvt_get(c2, "x", value, sizeof(value)) != KV_OK) {
    cr_assert_lt(kvt_now_ms(), deadline, "n2 did not get x");
    kvt_sleep_ms(10);
  }
  kv_close(c2);
  kvt_sleep_ms(500);
  for (int id = 1; id <= 3; ++id) {
    kv_node_status st;
    kvt_status(id, &st);
    for (size_t p = 0; p < st.peer_count; ++p) {
      const bool n3_link = id == 3 || st.peers[p].id == 3;
      if (!n3_link) continue;
      cr_assert_not(st.peers[p].connected_out, "n%d's link to n%u is up", id, st.peers[p].id);
      cr_assert_not(st.peers[p].connected_in, "n%d's link from n%u is up", id, st.peers[p].id);
    }
  }
  kv_client* c3 = kvt_client(3);
  cr_assert_eq(kvt_get(c3, "x", value, sizeof(value)), KV_NOT_FOUND);
  kv_close(c3);
  // Each node refuses the other's HelloAck proof when it dials.
  cr_assert_gt(kvt_log_count(1, "peer n3: its HelloAck proof does not match"), 0);
  cr_assert_gt(kvt_log_count(3, "peer n1: its HelloAck proof does not match"), 0);
  kvt_stop();
}

Test(peer_auth, fake_peer_with_the_secret_is_served) {
  StartWithTestAsN3();
  Conn conn = Conn::Dial(kvt_node_at(1)->port);
  conn.Handshake();
  conn.SendFrame(Batch(1, "from-n3", "hello"));
  kv_client* c = kvt_client(1);
  char value[16];
  double deadline = kvt_now_ms() + KVT_WAIT_TIMEOUT_MS;
  while (kvt_get(c, "from-n3", value, sizeof(value)) != KV_OK) {
    cr_assert_lt(kvt_now_ms(), deadline, "n1 did not apply the sealed write");
    kvt_sleep_ms(10);
  }
  cr_assert_str_eq(value, "hello");
  kv_close(c);
  kv_node_status st;
  kvt_status(1, &st);
  cr_assert(PeerOf(st, 3)->connected_in);
  // n1 acknowledges on the sealed link (the fake peer opens it).
  for (;;) {
    std::optional<Received> ack = conn.Next();
    cr_assert(ack.has_value(), "no Ack for the write");
    if (ack->type == Message::Ack && ack->clock.size() == 3 && ack->clock[2] == 1) break;
  }
  kvt_stop();
}

Test(peer_auth, wrong_secret_proof_is_refused_and_logged_once) {
  StartWithTestAsN3();
  Conn conn = Conn::Dial(kvt_node_at(1)->port);
  conn.Hello();  // (Checks n1's proof with the secret n1 has.)
  conn.Send(conn.ProofFrame("a wrong secret of enough length"));
  ExpectRefused(conn, "wrong secret");
  ExpectNoTrace(nullptr);
  cr_assert_eq(kvt_log_count(1, "failed peer authentication"), 1);
  kvt_stop();
}

Test(peer_auth, hello_without_authentication_is_refused) {
  StartWithTestAsN3();
  Conn conn = Conn::Dial(kvt_node_at(1)->port);
  conn.Send(Encode(wire::HelloFields{.cluster_fingerprint = Fingerprint(), .node_index = kSelf}));
  ExpectRefused(conn, "hello without a nonce");
  ExpectNoTrace(nullptr);
  cr_assert_eq(kvt_log_count(1, "without authentication; refusing"), 1);
  kvt_stop();
}

Test(peer_auth, replayed_handshake_is_refused) {
  StartWithTestAsN3();
  std::string hello, proof;
  {
    Conn first = Conn::Dial(kvt_node_at(1)->port);
    first.Handshake();
    hello = first.hello_bytes();
    proof = first.proof_bytes();
  }
  AwaitUnlinked();
  // The recorded Hello and HelloProof, byte for byte, on a new connection:
  // n1's fresh nonce makes the old proof worthless.
  Conn replay = Conn::Dial(kvt_node_at(1)->port);
  replay.Send(hello);
  std::optional<Received> ack = replay.Next();
  cr_assert(ack.has_value() && ack->type == Message::HelloAck);
  replay.Send(proof);
  ExpectRefused(replay, "replayed handshake");
  ExpectNoTrace(nullptr);
  cr_assert_eq(kvt_log_count(1, "failed peer authentication"), 1);
  kvt_stop();
}

Test(peer_auth, tampered_frame_is_refused) {
  StartWithTestAsN3();
  Conn conn = Conn::Dial(kvt_node_at(1)->port);
  conn.Handshake();
  std::string sealed = conn.out().Seal(Batch(1, "tampered", "value"));
  sealed[sealed.size() - 40] ^= 1;  // A byte of the FlatBuffer, before the tag.
  conn.Send(sealed);
  ExpectRefused(conn, "tampered frame");
  AwaitUnlinked();
  ExpectNoTrace("tampered");
  cr_assert_eq(kvt_log_count(1, "failed authentication"), 1);
  kvt_stop();
}

Test(peer_auth, injected_unsealed_frame_is_refused) {
  StartWithTestAsN3();
  Conn conn = Conn::Dial(kvt_node_at(1)->port);
  conn.Handshake();
  conn.Send(Batch(1, "injected", "value"));  // A valid frame without a tag.
  ExpectRefused(conn, "unsealed frame");
  AwaitUnlinked();
  ExpectNoTrace("injected");
  kvt_stop();
}

Test(peer_auth, replayed_and_reordered_frames_are_refused) {
  StartWithTestAsN3();
  std::string recorded;
  {
    Conn first = Conn::Dial(kvt_node_at(1)->port);
    first.Handshake();
    // Sealed for this connection but never sent on it.
    recorded = first.out().Seal(Batch(1, "replayed", "value"));
  }
  AwaitUnlinked();
  {
    Conn second = Conn::Dial(kvt_node_at(1)->port);
    second.Handshake();
    second.Send(recorded);  // Sealed under the first connection's keys.
    ExpectRefused(second, "frame replayed from another connection");
  }
  AwaitUnlinked();
  {
    Conn third = Conn::Dial(kvt_node_at(1)->port);
    third.Handshake();
    std::string first_frame = third.out().Seal(Batch(1, "reordered", "1"));
    std::string second_frame = third.out().Seal(Batch(2, "reordered", "2"));
    third.Send(second_frame + first_frame);
    ExpectRefused(third, "frames out of order");
  }
  AwaitUnlinked();
  ExpectNoTrace("replayed");
  ExpectNoTrace("reordered");
  cr_assert_eq(kvt_log_count(1, "failed authentication"), 2);
  kvt_stop();
}

Test(peer_auth, data_before_authentication_is_refused) {
  StartWithTestAsN3();
  {
    // A write batch between HelloAck and HelloProof.
    Conn conn = Conn::Dial(kvt_node_at(1)->port);
    conn.Hello();
    conn.Send(Batch(1, "early", "value"));
    ExpectRefused(conn, "batch before the proof");
  }
  cr_assert_eq(kvt_log_count(1, "WriteBatch from node 3 before it authenticated"), 1);
  {
    // A write batch as the first frame.
    Conn conn = Conn::Dial(kvt_node_at(1)->port);
    conn.Send(Batch(1, "early", "value"));
    std::optional<Received> error = conn.Next();
    cr_assert(error.has_value() && error->type == Message::Error);
    cr_assert(conn.Closed(3000));
  }
  ExpectNoTrace("early");
  kvt_stop();
}

Test(peer_auth, impostor_acceptor_is_refused) {
  // The test listens where n3 should be; n1 dials it and gets a HelloAck
  // whose proof is made up.
  int port = kvt_free_port();
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  cr_assert_eq(listen(listener, 8), 0);
  kvt_options options;
  std::memset(&options, 0, sizeof(options));
  options.port[2] = port;
  options.cluster_secret[0] = kSecret;
  options.cluster_secret[1] = kSecret;
  options.bootstrap = 1;
  kvt_start_with(&options);

  // n2 may dial us too: serve whoever comes until n1 is seen.
  bool saw_n1 = false;
  double deadline = kvt_now_ms() + KVT_WAIT_TIMEOUT_MS;
  while (!saw_n1) {
    cr_assert_lt(kvt_now_ms(), deadline, "n1 never dialed n3");
    pollfd p{listener, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    Conn conn(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    std::optional<std::string> frame = conn.ReadFrame(3000);
    cr_assert(frame.has_value());
    wire::FrameDecoder decoder(wire::kFrameBytesMaxDefault);
    decoder.Feed(frame->data(), frame->size());
    wire::DecodeResult r = decoder.Next();
    cr_assert_eq(r.kind, wire::DecodeResult::Kind::kFrame);
    const auto* hello = r.frame.envelope->message_as_Hello();
    cr_assert_not_null(hello);
    cr_assert_eq(wire::AsBytes(hello->nonce()).size(), 32u, "the dialer sent no nonce");
    if (hello->node_index() != 0) continue;
    saw_n1 = true;
    const uint64_t clock[] = {0, 0, 0};
    conn.Send(Encode(wire::HelloAckFields{
        .node_index = kSelf, .clock = clock, .nonce = RandomBytes(32), .auth = RandomBytes(32)}));
    cr_assert(conn.Closed(3000), "n1 kept a link whose HelloAck proof is wrong");
  }
  close(listener);
  kv_node_status st;
  kvt_status(1, &st);
  cr_assert_not(PeerOf(st, 3)->connected_out);
  cr_assert_geq(kvt_log_count(1, "peer n3: its HelloAck proof does not match"), 1);
  kvt_stop();
}

Test(peer_auth, non_loopback_node_needs_a_secret) {
  char cluster[64];
  snprintf(cluster, sizeof(cluster), "1=0.0.0.0:%d", kvt_free_port());
  char dir[] = "/tmp/kvt-bind-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char* argv[] = {const_cast<char*>(KVD_PATH),
                  const_cast<char*>("--id"),
                  const_cast<char*>("1"),
                  const_cast<char*>("--cluster"),
                  cluster,
                  const_cast<char*>("--data-dir"),
                  dir,
                  nullptr};
  char out[512], err[1024];
  int status = kvt_run(argv, out, sizeof(out), err, sizeof(err), 5000);
  rmdir(dir);
  cr_assert_eq(status, 2, "exit %d: %s", status, err);
  cr_assert(strstr(err, "not a loopback address") != nullptr, "%s", err);
  cr_assert(strstr(err, "--cluster-secret-file") != nullptr, "%s", err);
}

// --- Sequence numbers and message classes -------------------------------------------------

namespace {

// A batch with one write of n3 (seq 1) whose clock says n3 had seen
// `n1_seen` of n1's own writes.
std::string BatchClaiming(uint64_t n1_seen) {
  const uint64_t clock[] = {n1_seen, 0, 1};
  const wire::WriteFields write[] = {{.origin = kSelf, .clock = clock, .key = "c", .value = "v"}};
  return Encode(wire::WriteBatchFields{.writes = write});
}

int PutAtN1(const char* key) {
  kv_client* c = kvt_client(1);
  int rc = kv_put(c, key, strlen(key), "v", 1);
  kv_close(c);
  return rc;
}

}  // namespace

Test(peer_auth, absurd_own_sequence_claim_is_refused) {
  StartWithTestAsN3();
  Conn conn = Conn::Dial(kvt_node_at(1)->port);
  conn.Handshake();
  conn.SendFrame(BatchClaiming(uint64_t{1} << 60));  // "n3 has seen 2^60 writes of n1."
  std::optional<Received> error = conn.Next();
  cr_assert(error.has_value() && error->type == Message::Error);
  cr_assert_eq(error->status, KV_BAD_REQUEST, "%s", error->message.c_str());
  cr_assert(strstr(error->message.c_str(), "beyond any possible sequence number") != nullptr, "%s",
            error->message.c_str());
  cr_assert(conn.Closed(3000));
  AwaitUnlinked();
  cr_assert_eq(PutAtN1("after"), KV_OK, "n1 stopped accepting writes");
  kv_node_status st;
  kvt_status(1, &st);
  cr_assert(st.accepting_writes);
  cr_assert_eq(st.clock[2], 0u);
  kvt_stop();
}

Test(peer_auth, plausible_own_sequence_claim_still_stops_writes) {
  // A peer that has seen 5 writes of n1, which has none: n1 lost its disk
  // (or was restored from an old backup) and must not reuse 1..5.
  StartWithTestAsN3();
  Conn conn = Conn::Dial(kvt_node_at(1)->port);
  conn.Handshake();
  conn.SendFrame(BatchClaiming(5));
  double deadline = kvt_now_ms() + KVT_WAIT_TIMEOUT_MS;
  for (;;) {
    kv_node_status st;
    kvt_status(1, &st);
    if (!st.accepting_writes) break;
    cr_assert_lt(kvt_now_ms(), deadline, "n1 ignored a peer that knows more of its writes");
    kvt_sleep_ms(10);
  }
  cr_assert_eq(PutAtN1("reuse"), KV_UNAVAILABLE);
  cr_assert_eq(kvt_log_count(1, "peers know own writes up to 5"), 1);
  kvt_stop();
}

Test(peer_auth, clients_cannot_send_peer_messages_nor_peers_client_ones) {
  StartWithTestAsN3();
  const uint64_t clock[] = {0, 0, 0};
  const std::string peer_frames[] = {
      BatchClaiming(0),
      Encode(wire::AckFields{.clock = clock}),
      Encode(wire::HelloAckFields{.node_index = kSelf, .clock = clock}),
      Encode(wire::HelloProofFields{.auth = std::string(32, 'p')}),
  };
  for (const std::string& frame : peer_frames) {
    Conn conn = Conn::Dial(kvt_node_at(1)->port);
    conn.Send(frame);
    std::optional<Received> error = conn.Next();
    cr_assert(error.has_value() && error->type == Message::Error);
    cr_assert_eq(error->status, KV_BAD_REQUEST, "%s", error->message.c_str());
    cr_assert(conn.Closed(3000));
  }
  {
    // A connection that made a request is a client: no Hello afterwards.
    Conn conn = Conn::Dial(kvt_node_at(1)->port);
    conn.Send(Encode(wire::GetRequestFields{.key = "k"}, 7));
    std::optional<Received> reply = conn.Next();
    cr_assert(reply.has_value() && reply->type == Message::Reply);
    conn.Send(Encode(wire::HelloFields{
        .cluster_fingerprint = Fingerprint(), .node_index = kSelf, .nonce = RandomBytes(32)}));
    std::optional<Received> error = conn.Next();
    cr_assert(error.has_value() && error->type == Message::Error);
    cr_assert(conn.Closed(3000));
  }
  ExpectNoTrace(nullptr);
  for (const std::string& frame : {Encode(wire::PutRequestFields{.key = "k", .value = "v"}, 7),
                                   Encode(wire::StatusRequestFields{}, 7)}) {
    // An authenticated peer link carries no client or admin requests.
    Conn conn = Conn::Dial(kvt_node_at(1)->port);
    conn.Handshake();
    conn.SendFrame(frame);
    std::optional<Received> error = conn.Next();
    cr_assert(error.has_value() && error->type == Message::Error, "got %s",
              error ? kvd::fb::EnumNameMessage(error->type) : "nothing");
    cr_assert_eq(error->status, KV_BAD_REQUEST);
    cr_assert(conn.Closed(3000));
    AwaitUnlinked();
  }
  kv_client* c = kvt_client(1);
  char value[16];
  cr_assert_eq(kvt_get(c, "k", value, sizeof(value)), KV_NOT_FOUND);
  kv_close(c);
  kvt_stop();
}

// --- The client password -----------------------------------------------------------------

TestSuite(client_auth, .fini = kvt_cleanup, .timeout = 40);

Test(client_auth, password_accepted_and_refused) {
  kvt_options options;
  std::memset(&options, 0, sizeof(options));
  options.client_password = "open sesame";
  kvt_start_with(&options);  // The harness's own clients present the password.
  kv_client* good = kvt_client(1);
  kvt_put(good, "k", "v");
  kv_close(good);

  // No password: the first request is refused and the connection closed.
  kv_client* none = nullptr;
  cr_assert_eq(kv_connect(kvt_node_at(1)->address, 3000, &none), KV_OK);
  cr_assert_eq(kv_put(none, "k", 1, "stolen", 6), KV_UNAUTHORIZED, "%s", kv_errmsg(none));
  cr_assert_eq(kv_is_closed(none, 3000), 1);
  kv_close(none);
  // Status over TCP needs it too.
  cr_assert_eq(kv_connect(kvt_node_at(1)->address, 3000, &none), KV_OK);
  kv_node_status st;
  cr_assert_eq(kv_status(none, &st), KV_UNAUTHORIZED, "%s", kv_errmsg(none));
  kv_close(none);

  // A wrong password.
  kv_client* wrong = nullptr;
  cr_assert_eq(kv_connect(kvt_node_at(1)->address, 3000, &wrong), KV_OK);
  cr_assert_eq(kv_auth(wrong, "open sesamE", 11), KV_UNAUTHORIZED);
  cr_assert_eq(kv_is_closed(wrong, 3000), 1);
  kv_close(wrong);
  cr_assert_eq(kvt_log_count(1, "wrong client password"), 1);
  cr_assert_eq(kvt_log_count(1, "before the client password"), 2);

  // Nothing changed: k is still v.
  kv_client* check = kvt_client(1);
  char value[16];
  cr_assert_eq(kvt_get(check, "k", value, sizeof(value)), KV_OK);
  cr_assert_str_eq(value, "v");
  kv_close(check);

  // The admin socket needs no password.
  kv_client* admin = kvt_admin(1);
  cr_assert_eq(kv_status(admin, &st), KV_OK);
  kv_close(admin);

  // kvctl --password-file, right and wrong.
  char right_file[200], wrong_file[200];
  snprintf(right_file, sizeof(right_file), "%s/right.pw", kvt_node_at(1)->dir);
  snprintf(wrong_file, sizeof(wrong_file), "%s/wrong.pw", kvt_node_at(1)->dir);
  FILE* f = fopen(right_file, "w");
  fputs("open sesame\n", f);
  fclose(f);
  f = fopen(wrong_file, "w");
  fputs("nope\n", f);
  fclose(f);
  char out[512], err[512];
  char* get_right[] = {const_cast<char*>(KVCTL_PATH),
                       const_cast<char*>("-n"),
                       kvt_node_at(1)->address,
                       const_cast<char*>("--password-file"),
                       right_file,
                       const_cast<char*>("get"),
                       const_cast<char*>("k"),
                       nullptr};
  cr_assert_eq(kvt_run(get_right, out, sizeof(out), err, sizeof(err), 5000), 0, "%s", err);
  cr_assert_str_eq(out, "v\n");
  char* get_wrong[] = {const_cast<char*>(KVCTL_PATH),
                       const_cast<char*>("-n"),
                       kvt_node_at(1)->address,
                       const_cast<char*>("--password-file"),
                       wrong_file,
                       const_cast<char*>("get"),
                       const_cast<char*>("k"),
                       nullptr};
  cr_assert_eq(kvt_run(get_wrong, out, sizeof(out), err, sizeof(err), 5000), 4, "%s", err);
  kvt_stop();
}

Test(client_auth, admin_socket_modes) {
  kvt_start(nullptr);
  struct stat info;
  cr_assert_eq(stat(kvt_node_at(1)->admin, &info), 0);
  cr_assert_eq(info.st_mode & 0777, 0600u, "admin socket mode %o", info.st_mode & 0777);
  kvt_stop();
}

Test(client_auth, admin_group_makes_the_socket_0660) {
  // Any group other than ours shows the chown happened.
  const struct group* group = getgrnam("nogroup");
  if (group == nullptr) group = getgrnam("daemon");
  if (group == nullptr || getuid() != 0) {
    cr_log_warn("needs root and a group 'nogroup' or 'daemon'; skipped");
    return;
  }
  kvt_start("--admin-group", group->gr_name, nullptr);
  struct stat info;
  cr_assert_eq(stat(kvt_node_at(1)->admin, &info), 0);
  cr_assert_eq(info.st_mode & 0777, 0660u, "admin socket mode %o", info.st_mode & 0777);
  cr_assert_eq(info.st_gid, group->gr_gid);
  kvt_stop();
}
