// kvctl: the command line for causalkv (issue 3; DESIGN §5). Parses the
// command with CLI11, runs one command through kvd::client, prints a human
// answer or one JSON object, and exits with a code scripts can rely on
// (see kFooter). CLI11 exceptions are caught in main() only.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ctl/client.h"
#include "ctl/cluster_file.h"
#include "ctl/context_file.h"
#include "ctl/json.h"
#include "ctl/render.h"

namespace kvd::ctl {
namespace {

using client::Client;
using client::Code;
using client::Error;
using client::Result;

constexpr int kExitOk = 0;
constexpr int kExitNotFound = 1;  // Also: not converged.
constexpr int kExitUsage = 2;     // Also: connection and protocol errors.
constexpr int kExitTimeout = 3;
constexpr int kExitRefused = 4;

constexpr int kTimeoutMsDefault = 5000;
constexpr int kConvergeTimeoutMsDefault = 10000;

constexpr const char* kFooter = R"(Addresses:
  -n takes HOST:PORT (default 127.0.0.1:7001); wait-converged and status take
  a comma-separated list. --admin takes a node's Unix admin socket; buffer,
  link and shutdown need it, and the other commands accept it instead of -n.

Node ids are 1-based (n1 is the first node of the --cluster list).

Sessions: with --context FILE, put/get/del read the session context (a JSON
array of numbers; a missing file is an empty context) before the request and
write the merged context back after it, so causality carries across
invocations and nodes.

Output: get prints the value followed by a newline (--raw: the bytes only).
--json prints one JSON object on stdout: get {key, found, value (or
value_base64 when not UTF-8; null if not found), version}; put/del {key,
version}; status {id, clock, buffered, keys, accepting_writes, log_entries,
peers: [{id, address, connected (= connected_out && connected_in),
connected_out, connected_in, held, acked}]}; buffer {total, entries: [{origin,
seq, key, is_delete, missing: ["n1:3", "n1:4..6"], ...}]}; status of several
nodes {nodes: [...]}; wait-converged {converged, elapsed_ms, nodes}; on
failure {error, message}.

Exit codes:
  0  success
  1  get: key not found; wait-converged: not converged in time
  2  usage error, bad context file, connection or protocol error
  3  timeout: the node did not reach the session context in time (its
     message names the missing writes, e.g. n1:3), or no reply in --timeout
  4  the node refused or failed the request (BAD_REQUEST, TOO_LARGE,
     UNAVAILABLE, UNAUTHORIZED, INTERNAL)
)";

struct Globals {
  std::string nodes = "127.0.0.1:7001";
  std::string admin;
  std::string context_file;
  int timeout_ms = kTimeoutMsDefault;
  bool timeout_given = false;
  std::string password_file;
  std::string password;  // Read from password_file before any command runs.
  bool json = false;
};

int ExitCodeFor(Code code) {
  switch (code) {
    case Code::kOk:
      return kExitOk;
    case Code::kNotFound:
      return kExitNotFound;
    case Code::kTimeout:
    case Code::kTimedOut:
      return kExitTimeout;
    case Code::kConnection:
    case Code::kProtocol:
    case Code::kInvalidArgument:
    case Code::kBufferTooSmall:
      return kExitUsage;
    case Code::kBadRequest:
    case Code::kTooLarge:
    case Code::kUnavailable:
    case Code::kUnauthorized:
    case Code::kInternal:
      return kExitRefused;
  }
  return kExitUsage;
}

// Prints what went wrong (stderr, and a JSON object on stdout with --json)
// and returns the exit code for it.
int Fail(const Globals& globals, const Error& error) {
  std::string text = error.message.empty() ? client::CodeName(error.code) : error.message;
  if (error.code == Code::kTimeout) text = "timeout: " + text;
  std::cerr << "kvctl: " << text << "\n";
  if (globals.json) {
    JsonWriter json;
    json.BeginObject()
        .Key("error")
        .String(client::CodeName(error.code))
        .Key("message")
        .String(error.message)
        .EndObject();
    std::cout << json.str() << "\n";
  }
  return ExitCodeFor(error.code);
}

int Usage(const Globals& globals, const std::string& message) {
  return Fail(globals, Error{Code::kInvalidArgument, message});
}

void PrintJson(const JsonWriter& json) { std::cout << json.str() << "\n"; }

client::Options ClientOptions(const Globals& globals) {
  client::Options options;
  options.connect_timeout_ms = globals.timeout_ms;
  options.request_timeout_ms = globals.timeout_ms;
  options.password = globals.password;
  return options;
}

// The one node a key-value or status command talks to: --admin if given,
// else the single address of -n.
Result<client::Endpoint> SingleEndpoint(const Globals& globals) {
  if (!globals.admin.empty()) return client::UnixEndpoint(globals.admin);
  std::vector<std::string> nodes = client::SplitList(globals.nodes);
  if (nodes.size() != 1) {
    return Error{Code::kInvalidArgument,
                 "this command takes one node; -n lists " + std::to_string(nodes.size())};
  }
  return client::ParseAddress(nodes[0]);
}

// Every node of -n (or of --admin, which may list several sockets too).
Result<std::vector<client::Endpoint>> AllEndpoints(const Globals& globals) {
  const bool admin = !globals.admin.empty();
  std::vector<client::Endpoint> endpoints;
  for (const std::string& item : client::SplitList(admin ? globals.admin : globals.nodes)) {
    Result<client::Endpoint> endpoint =
        admin ? client::UnixEndpoint(item) : client::ParseAddress(item);
    if (!endpoint.ok()) return endpoint.error();
    endpoints.push_back(*endpoint);
  }
  if (endpoints.empty()) return Error{Code::kInvalidArgument, "no node given"};
  return endpoints;
}

Result<Client> ConnectOne(const Globals& globals) {
  Result<client::Endpoint> endpoint = SingleEndpoint(globals);
  if (!endpoint.ok()) return endpoint.error();
  return Client::Connect(*endpoint, ClientOptions(globals));
}

Result<Client> ConnectAdmin(const Globals& globals, const char* command) {
  if (globals.admin.empty()) {
    return Error{Code::kInvalidArgument,
                 std::string(command) + " needs --admin SOCKET (the node's admin socket)"};
  }
  return ConnectOne(globals);
}

// --- put / get / del -------------------------------------------------------------

enum class KvOp : uint8_t { kPut, kGet, kDelete };

struct KvArgs {
  std::string key;
  std::optional<std::string> value;
  std::string value_file;
  bool raw = false;
};

Result<std::string> ReadValueFile(const std::string& path) {
  std::string bytes;
  if (path == "-") {
    bytes.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return Error{Code::kInvalidArgument, "cannot read the value from stdin"};
    return bytes;
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return Error{Code::kInvalidArgument, "cannot open value file " + path};
  bytes.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  if (file.bad()) return Error{Code::kInvalidArgument, "cannot read value file " + path};
  return bytes;
}

int RunKv(const Globals& globals, KvOp op, const KvArgs& args) {
  std::string value;
  if (op == KvOp::kPut) {
    if (args.value.has_value() == !args.value_file.empty()) {
      return Usage(globals, "put takes a VALUE or --value-file FILE (one of them)");
    }
    if (args.value) {
      value = *args.value;
    } else {
      Result<std::string> read = ReadValueFile(args.value_file);
      if (!read.ok()) return Fail(globals, read.error());
      value = std::move(read).value();
    }
  }
  client::Context context;
  if (!globals.context_file.empty()) {
    Result<client::Context> read = ReadContextFile(globals.context_file);
    if (!read.ok()) return Fail(globals, read.error());
    context = std::move(read).value();
  }
  Result<Client> client = ConnectOne(globals);
  if (!client.ok()) return Fail(globals, client.error());
  client->set_context(std::move(context));

  Result<client::Reply> reply = op == KvOp::kPut   ? client->Put(args.key, value)
                                : op == KvOp::kGet ? client->Get(args.key)
                                                   : client->Delete(args.key);
  if (!reply.ok()) return Fail(globals, reply.error());
  if (!globals.context_file.empty()) {
    Result<void> written = WriteContextFile(globals.context_file, client->context());
    if (!written.ok()) return Fail(globals, written.error());
  }

  const bool not_found = reply->status == Code::kNotFound;
  if (globals.json) {
    JsonWriter json;
    ReplyJson(args.key, *reply, op == KvOp::kGet, &json);
    PrintJson(json);
  } else if (op == KvOp::kGet && !not_found) {
    std::cout << reply->value;
    if (!args.raw) std::cout << "\n";
  } else if (op != KvOp::kGet) {
    std::cout << "OK version " << FormatClock(reply->version) << "\n";
  }
  if (op == KvOp::kGet && not_found) {
    std::cerr << "not found\n";
    return kExitNotFound;
  }
  return kExitOk;
}

// --- status / buffer -----------------------------------------------------------------

int RunStatus(const Globals& globals) {
  Result<std::vector<client::Endpoint>> endpoints = AllEndpoints(globals);
  if (!endpoints.ok()) return Fail(globals, endpoints.error());
  // One node: its object. Several: {"nodes": [...]} and a section each.
  const bool several = endpoints->size() > 1;
  JsonWriter json;
  if (several) json.BeginObject().Key("nodes").BeginArray();
  int exit_code = kExitOk;
  for (size_t i = 0; i < endpoints->size(); ++i) {
    const client::Endpoint& endpoint = (*endpoints)[i];
    Result<Client> client = Client::Connect(endpoint, ClientOptions(globals));
    Result<client::NodeStatus> status =
        client.ok() ? client->Status() : Result<client::NodeStatus>(client.error());
    if (!status.ok()) {
      if (!several) return Fail(globals, status.error());
      std::cerr << "kvctl: " << status.error().message << "\n";
      exit_code = std::max(exit_code, ExitCodeFor(status.error().code));
      if (globals.json) {
        json.BeginObject()
            .Key("address")
            .String(endpoint.ToString())
            .Key("error")
            .String(client::CodeName(status.error().code))
            .Key("message")
            .String(status.error().message)
            .EndObject();
      }
      continue;
    }
    if (globals.json) {
      StatusJson(*status, &json);
    } else {
      if (several) std::cout << (i > 0 ? "\n" : "") << "== " << endpoint.ToString() << "\n";
      std::cout << StatusText(*status);
    }
  }
  if (several) json.EndArray().EndObject();
  if (globals.json) PrintJson(json);
  return exit_code;
}

// One row per node of the cluster definition: the operator's overview.
int RunClusterStatus(const Globals& globals, const std::string& cluster_file) {
  Result<std::vector<std::string>> addresses = ReadClusterFile(cluster_file);
  if (!addresses.ok()) return Fail(globals, addresses.error());
  JsonWriter json;
  json.BeginObject().Key("nodes").BeginArray();
  std::ostringstream table;
  table << "node  address               state  clock                keys      buffered  peers  "
           "writes\n";
  int exit_code = kExitOk;
  for (size_t i = 0; i < addresses->size(); ++i) {
    const std::string& address = (*addresses)[i];
    Result<client::Endpoint> endpoint = client::ParseAddress(address);
    Result<Client> client = endpoint.ok() ? Client::Connect(*endpoint, ClientOptions(globals))
                                          : Result<Client>(endpoint.error());
    Result<client::NodeStatus> status =
        client.ok() ? client->Status() : Result<client::NodeStatus>(client.error());
    char row[256];
    json.BeginObject().Key("id").Uint(i + 1).Key("address").String(address);
    if (!status.ok()) {
      exit_code = kExitUsage;
      json.Key("up").Bool(false).Key("message").String(status.error().message).EndObject();
      std::snprintf(row, sizeof(row), "n%-4zu %-21s %-6s %s\n", i + 1, address.c_str(), "down",
                    status.error().message.c_str());
      table << row;
      continue;
    }
    size_t peers_up = 0;
    for (const client::PeerStatus& peer : status->peers) {
      peers_up += peer.connected_out && peer.connected_in ? 1 : 0;
    }
    std::string clock = FormatClock(status->clock);
    json.Key("up").Bool(true).Key("clock").BeginArray();
    for (uint64_t count : status->clock) json.Uint(count);
    json.EndArray()
        .Key("keys")
        .Uint(status->keys)
        .Key("buffered")
        .Uint(status->buffered)
        .Key("peers_connected")
        .Uint(peers_up)
        .Key("peers")
        .Uint(status->peers.size())
        .Key("accepting_writes")
        .Bool(status->accepting_writes)
        .EndObject();
    std::snprintf(row, sizeof(row), "n%-4zu %-21s %-6s %-20s %-9llu %-9llu %zu/%-4zu %s\n", i + 1,
                  address.c_str(), "up", clock.c_str(), (unsigned long long)status->keys,
                  (unsigned long long)status->buffered, peers_up, status->peers.size(),
                  status->accepting_writes ? "yes" : "no");
    table << row;
  }
  json.EndArray().EndObject();
  if (globals.json) {
    PrintJson(json);
  } else {
    std::cout << table.str();
  }
  return exit_code;
}

int RunBuffer(const Globals& globals, uint32_t limit) {
  Result<Client> client = ConnectAdmin(globals, "buffer");
  if (!client.ok()) return Fail(globals, client.error());
  Result<client::BufferListing> listing = client->Buffer(limit);
  if (!listing.ok()) return Fail(globals, listing.error());
  if (globals.json) {
    JsonWriter json;
    BufferJson(*listing, &json);
    PrintJson(json);
  } else {
    std::cout << BufferText(*listing);
  }
  return kExitOk;
}

// --- link / shutdown ------------------------------------------------------------------

int RunLink(const Globals& globals, uint32_t peer_id, bool hold) {
  if (peer_id == 0) return Usage(globals, "PEER_ID is 1-based");
  Result<Client> client = ConnectAdmin(globals, "link");
  if (!client.ok()) return Fail(globals, client.error());
  Result<void> done = client->Link(peer_id - 1, hold);
  if (!done.ok()) return Fail(globals, done.error());
  if (globals.json) {
    JsonWriter json;
    json.BeginObject().Key("peer").Uint(peer_id).Key("held").Bool(hold).EndObject();
    PrintJson(json);
  } else {
    std::cout << "link to n" << peer_id << (hold ? " held" : " released") << "\n";
  }
  return kExitOk;
}

int RunSnapshot(const Globals& globals) {
  Result<Client> client = ConnectAdmin(globals, "snapshot");
  if (!client.ok()) return Fail(globals, client.error());
  Result<std::string> done = client->Snapshot();
  if (!done.ok()) return Fail(globals, done.error());
  if (globals.json) {
    JsonWriter json;
    json.BeginObject().Key("snapshot").String(*done).EndObject();
    PrintJson(json);
  } else {
    std::cout << *done << "\n";
  }
  return kExitOk;
}

int RunShutdown(const Globals& globals) {
  Result<Client> client = ConnectAdmin(globals, "shutdown");
  if (!client.ok()) return Fail(globals, client.error());
  Result<void> done = client->Shutdown();
  if (!done.ok()) return Fail(globals, done.error());
  if (globals.json) {
    JsonWriter json;
    json.BeginObject().Key("shutdown").Bool(true).EndObject();
    PrintJson(json);
  } else {
    std::cout << "shutting down\n";
  }
  return kExitOk;
}

// --- wait-converged ---------------------------------------------------------------------

using SteadyClock = std::chrono::steady_clock;

int RemainingMs(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 1));
}

// One node as the last poll saw it.
struct NodeView {
  client::Endpoint endpoint;
  std::optional<Client> client;
  std::optional<client::NodeStatus> status;
  std::string error;
};

// Refreshes every node's status; reconnects those whose connection failed.
void Poll(std::vector<NodeView>* nodes, SteadyClock::time_point deadline) {
  for (NodeView& node : *nodes) {
    node.status.reset();
    // Each poll is short, so a dead node cannot use up the whole wait.
    client::Options options;
    options.connect_timeout_ms = std::min(RemainingMs(deadline), 1000);
    options.request_timeout_ms = std::min(RemainingMs(deadline), 2000);
    if (!node.client) {
      Result<Client> client = Client::Connect(node.endpoint, options);
      if (!client.ok()) {
        node.error = client.error().message;
        continue;
      }
      node.client.emplace(std::move(client).value());
    }
    node.client->set_request_timeout_ms(options.request_timeout_ms);
    Result<client::NodeStatus> status = node.client->Status();
    if (!status.ok()) {
      node.error = status.error().message;
      node.client.reset();
      continue;
    }
    node.status = std::move(status).value();
    node.error.clear();
  }
}

// Converged: every node answers, holds nothing in its causal buffer, has
// the same clock, and takes writes (it has its cluster identity and all of
// its own writes).
bool Converged(const std::vector<NodeView>& nodes) {
  for (const NodeView& node : nodes) {
    if (!node.status || node.status->buffered != 0 || !node.status->accepting_writes) return false;
    if (node.status->clock != nodes.front().status->clock) return false;
  }
  return true;
}

int RunWaitConverged(const Globals& globals, int interval_ms) {
  Result<std::vector<client::Endpoint>> endpoints = AllEndpoints(globals);
  if (!endpoints.ok()) return Fail(globals, endpoints.error());
  const int timeout_ms = globals.timeout_given ? globals.timeout_ms : kConvergeTimeoutMsDefault;
  const auto start = SteadyClock::now();
  const auto deadline = start + std::chrono::milliseconds(timeout_ms);
  std::vector<NodeView> nodes;
  for (const client::Endpoint& endpoint : *endpoints) nodes.push_back({endpoint, {}, {}, {}});

  bool converged = false;
  for (;;) {
    Poll(&nodes, deadline);
    converged = Converged(nodes);
    if (converged || SteadyClock::now() >= deadline) break;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min<int64_t>(interval_ms, RemainingMs(deadline))));
  }
  const auto elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();

  if (globals.json) {
    JsonWriter json;
    json.BeginObject()
        .Key("converged")
        .Bool(converged)
        .Key("elapsed_ms")
        .Uint(static_cast<uint64_t>(elapsed_ms))
        .Key("nodes")
        .BeginArray();
    for (const NodeView& node : nodes) {
      json.BeginObject().Key("address").String(node.endpoint.ToString());
      if (node.status) {
        json.Key("id")
            .Uint(node.status->node_index + 1)
            .Key("clock")
            .Clock(node.status->clock)
            .Key("buffered")
            .Uint(node.status->buffered);
      } else {
        json.Key("error").String(node.error);
      }
      json.EndObject();
    }
    json.EndArray().EndObject();
    PrintJson(json);
  } else if (converged) {
    std::cout << "converged after " << elapsed_ms << " ms: clock "
              << FormatClock(nodes.front().status->clock) << " on " << nodes.size() << " node"
              << (nodes.size() == 1 ? "" : "s") << "\n";
  } else {
    std::cerr << "kvctl: not converged after " << elapsed_ms << " ms\n";
    for (const NodeView& node : nodes) {
      std::cerr << "  " << node.endpoint.ToString() << ": ";
      if (node.status) {
        std::cerr << "n" << node.status->node_index + 1 << " clock "
                  << FormatClock(node.status->clock) << ", " << node.status->buffered
                  << " buffered\n";
      } else {
        std::cerr << node.error << "\n";
      }
    }
  }
  return converged ? kExitOk : kExitNotFound;
}

// --- pipeline-test ---------------------------------------------------------------------

// Runs `count` requests with at most `depth` in flight; returns ops/s.
Result<double> RunPipelined(Client* client, uint64_t count, uint64_t depth, bool put,
                            const std::string& value) {
  const auto start = SteadyClock::now();
  uint64_t sent = 0;
  uint64_t received = 0;
  while (received < count) {
    while (sent < count && sent - received < depth) {
      std::string key = "pipeline-test:" + std::to_string(sent);
      Result<uint64_t> id = put ? client->SendPut(key, value) : client->SendGet(key);
      if (!id.ok()) return id.error();
      ++sent;
    }
    if (Result<void> flushed = client->Flush(); !flushed.ok()) return flushed.error();
    // Take half a window before refilling, so each write carries many requests.
    const uint64_t target = std::min(count, received + std::max<uint64_t>(1, depth / 2));
    while (received < target) {
      Result<client::Reply> reply = client->ReceiveReply();
      if (!reply.ok()) return reply.error();
      if (reply->status != Code::kOk) return Error{reply->status, reply->message};
      ++received;
    }
  }
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  return static_cast<double>(count) / std::max(seconds, 1e-9);
}

int RunPipelineTest(const Globals& globals, uint64_t count, uint64_t depth, size_t value_bytes) {
  if (count == 0 || depth == 0) return Usage(globals, "--count and --depth must be at least 1");
  Result<Client> client = ConnectOne(globals);
  if (!client.ok()) return Fail(globals, client.error());
  const std::string value(value_bytes, 'v');
  Result<double> puts = RunPipelined(&*client, count, depth, /*put=*/true, value);
  if (!puts.ok()) return Fail(globals, puts.error());
  Result<double> gets = RunPipelined(&*client, count, depth, /*put=*/false, value);
  if (!gets.ok()) return Fail(globals, gets.error());
  if (globals.json) {
    JsonWriter json;
    json.BeginObject()
        .Key("count")
        .Uint(count)
        .Key("depth")
        .Uint(depth)
        .Key("value_bytes")
        .Uint(value_bytes)
        .Key("put_ops_per_s")
        .Uint(static_cast<uint64_t>(*puts))
        .Key("get_ops_per_s")
        .Uint(static_cast<uint64_t>(*gets))
        .EndObject();
    PrintJson(json);
  } else {
    std::printf("put: %llu ops, depth %llu, %zu-byte values: %.0f ops/s\n",
                static_cast<unsigned long long>(count), static_cast<unsigned long long>(depth),
                value_bytes, *puts);
    std::printf("get: %llu ops, depth %llu: %.0f ops/s\n", static_cast<unsigned long long>(count),
                static_cast<unsigned long long>(depth), *gets);
  }
  return kExitOk;
}

// --- Command line --------------------------------------------------------------------------

struct Parsed {
  Globals globals;
  KvArgs kv;
  uint32_t limit = 0;
  uint32_t peer_id = 0;
  int interval_ms = 100;
  uint64_t count = 100000;
  uint64_t depth = 64;
  size_t value_bytes = 16;
  std::string cluster_file = kDefaultClusterFile;
};

// Declares every command and option on `app`; the callbacks of the chosen
// command run after parsing (see Run).
void Declare(CLI::App& app, Parsed& p) {
  app.description(
      "kvctl: talk to causalkv nodes (kvd): put/get/del with a session context, status, "
      "buffer, link hold/release, shutdown, wait-converged.");
  app.require_subcommand(1);
  // Copied into every command created below; kvctl's own footer is set last.
  app.footer(
      "Global options (-n, --admin, --context, --timeout, --json, --password-file) and exit codes: "
      "kvctl --help");
  // Global options may also follow the command: kvctl get KEY --json.
  app.fallthrough();
  app.set_version_flag("--version", "kvctl 0.1.0");

  Globals& g = p.globals;
  app.add_option("-n,--node", g.nodes, "Node address HOST:PORT, or a comma-separated list")
      ->type_name("HOST:PORT[,...]")
      ->capture_default_str();
  app.add_option("--admin", g.admin, "A node's Unix admin socket (buffer, link, shutdown)")
      ->type_name("SOCKET");
  app.add_option("--context", g.context_file,
                 "Session context file, read before and written after put/get/del")
      ->type_name("FILE");
  auto* timeout = app.add_option("--timeout", g.timeout_ms,
                                 "Milliseconds per connect and request (default 5000; "
                                 "wait-converged: total wait, default 10000)");
  timeout->type_name("MS")->check(CLI::PositiveNumber);
  app.add_flag("--json", g.json, "Print one JSON object on stdout");
  app.add_option("--password-file", g.password_file,
                 "Present the password in FILE to the node before any request (for a node "
                 "started with a client secret)")
      ->type_name("FILE");
  app.parse_complete_callback([&g, timeout] { g.timeout_given = timeout->count() > 0; });

  CLI::App* put = app.add_subcommand("put", "Write KEY = VALUE");
  put->add_option("KEY", p.kv.key, "Key (bytes)")->required();
  put->add_option("VALUE", p.kv.value, "Value (bytes)");
  put->add_option("--value-file", p.kv.value_file, "Read the value from FILE ('-': stdin)")
      ->type_name("FILE");

  CLI::App* get = app.add_subcommand("get", "Print the value of KEY (exit 1 if not found)");
  get->add_option("KEY", p.kv.key, "Key")->required();
  get->add_flag("--raw", p.kv.raw, "Print the value's bytes only, no newline");

  CLI::App* del = app.add_subcommand("del", "Delete KEY")->alias("delete");
  del->add_option("KEY", p.kv.key, "Key")->required();

  app.add_subcommand("status", "Show a node's clock, keys, buffer and peers (or several nodes')");

  CLI::App* buffer = app.add_subcommand("buffer", "List writes waiting in the causal buffer");
  buffer->add_option("--limit", p.limit, "List at most this many (0: the node's default)");

  CLI::App* link = app.add_subcommand("link", "Hold or release replication to a peer");
  link->require_subcommand(1);
  CLI::App* hold = link->add_subcommand("hold", "Hold replication to peer PEER_ID");
  hold->add_option("PEER_ID", p.peer_id, "1-based id of the peer")->required();
  CLI::App* release = link->add_subcommand("release", "Release replication to peer PEER_ID");
  release->add_option("PEER_ID", p.peer_id, "1-based id of the peer")->required();

  app.add_subcommand("shutdown", "Ask the node to shut down cleanly");
  app.add_subcommand("snapshot",
                     "Write a snapshot now (the older log segments go); waits until it is durable");

  CLI::App* cluster = app.add_subcommand("cluster", "Commands about the whole cluster");
  cluster->require_subcommand(1);
  CLI::App* cluster_status = cluster->add_subcommand(
      "status", "One table with every node's state, from the cluster definition file");
  cluster_status
      ->add_option("--cluster-file", p.cluster_file,
                   "Environment file with KVD_CLUSTER=1=HOST:PORT,... (or the bare list)")
      ->type_name("FILE")
      ->capture_default_str();

  CLI::App* wait = app.add_subcommand(
      "wait-converged", "Wait until all nodes of -n have equal clocks and empty buffers");
  wait->add_option("--interval", p.interval_ms, "Milliseconds between polls")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  CLI::App* pipeline = app.add_subcommand(
      "pipeline-test", "Measure pipelined put and get throughput (writes pipeline-test:N keys)");
  pipeline->add_option("--count", p.count, "Requests of each kind")->capture_default_str();
  pipeline->add_option("--depth", p.depth, "Requests in flight")->capture_default_str();
  pipeline->add_option("--value-size", p.value_bytes, "Bytes per value")->capture_default_str();

  app.footer(kFooter);
}

// The password file's bytes without a trailing line end, as kvd reads its
// --client-secret-file.
Result<std::string> ReadPasswordFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Error{Code::kInvalidArgument, "cannot open password file " + path};
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) return Error{Code::kInvalidArgument, "cannot read password file " + path};
  while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == '\r')) bytes.pop_back();
  if (bytes.empty()) return Error{Code::kInvalidArgument, "password file " + path + " is empty"};
  return bytes;
}

int Run(CLI::App& app, Parsed& p) {
  if (!p.globals.password_file.empty()) {
    Result<std::string> password = ReadPasswordFile(p.globals.password_file);
    if (!password.ok()) return Fail(p.globals, password.error());
    p.globals.password = std::move(password).value();
  }
  const Globals& g = p.globals;
  CLI::App* command = app.get_subcommands().front();
  const std::string name = command->get_name();
  if (name == "put") return RunKv(g, KvOp::kPut, p.kv);
  if (name == "get") return RunKv(g, KvOp::kGet, p.kv);
  if (name == "del") return RunKv(g, KvOp::kDelete, p.kv);
  if (name == "status") return RunStatus(g);
  if (name == "buffer") return RunBuffer(g, p.limit);
  if (name == "link") {
    const bool hold = command->get_subcommands().front()->get_name() == "hold";
    return RunLink(g, p.peer_id, hold);
  }
  if (name == "shutdown") return RunShutdown(g);
  if (name == "snapshot") return RunSnapshot(g);
  if (name == "cluster") return RunClusterStatus(g, p.cluster_file);
  if (name == "wait-converged") return RunWaitConverged(g, p.interval_ms);
  if (name == "pipeline-test") return RunPipelineTest(g, p.count, p.depth, p.value_bytes);
  return Usage(g, "unknown command " + name);
}

}  // namespace
}  // namespace kvd::ctl

int main(int argc, char** argv) {
  CLI::App app{"", "kvctl"};
  kvd::ctl::Parsed parsed;
  kvd::ctl::Declare(app, parsed);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and --version exit 0; every usage error exits 2.
    int code = app.exit(e);
    return code == 0 ? 0 : kvd::ctl::kExitUsage;
  }
  return kvd::ctl::Run(app, parsed);
}
