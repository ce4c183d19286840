#include "tests/checker/checker.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kvd::checker {
namespace {

constexpr uint32_t kNone = UINT32_MAX;

// A square bit matrix; row a has bit b set when a reaches b. Rows are
// contiguous words so that merging one op's reach into another's is a
// tight loop over n/64 words, which is what keeps the closure cheap.
class BitMatrix {
 public:
  explicit BitMatrix(size_t n) : words_per_row_((n + 63) / 64), words_(n * words_per_row_, 0) {}

  bool Get(size_t row, size_t col) const {
    return (words_[row * words_per_row_ + col / 64] >> (col % 64)) & 1;
  }
  void Set(size_t row, size_t col) {
    words_[row * words_per_row_ + col / 64] |= uint64_t{1} << (col % 64);
  }
  void OrRowInto(size_t dst, size_t src) {
    uint64_t* d = &words_[dst * words_per_row_];
    const uint64_t* s = &words_[src * words_per_row_];
    for (size_t i = 0; i < words_per_row_; ++i) d[i] |= s[i];
  }

 private:
  size_t words_per_row_;
  std::vector<uint64_t> words_;
};

// Edge kinds, kept so that a cycle can be explained edge by edge.
enum class EdgeKind : uint8_t { kPO, kWR, kCF };

struct Edge {
  uint32_t to;
  EdgeKind kind;
};

using Graph = std::vector<std::vector<Edge>>;

// A cycle as ops[0] -kinds[0]-> ops[1] ... -kinds[last]-> ops[0].
struct Cycle {
  std::vector<uint32_t> ops;
  std::vector<EdgeKind> kinds;
};

std::string_view EdgeName(EdgeKind kind) {
  switch (kind) {
    case EdgeKind::kPO:
      return "PO";
    case EdgeKind::kWR:
      return "WR";
    case EdgeKind::kCF:
      return "CF";
  }
  return "?";
}

// Kahn's algorithm. The result is shorter than the graph when it has a cycle.
std::vector<uint32_t> TopologicalOrder(const Graph& graph) {
  const size_t n = graph.size();
  std::vector<uint32_t> in_degree(n, 0);
  for (const auto& edges : graph) {
    for (const Edge& e : edges) ++in_degree[e.to];
  }
  std::vector<uint32_t> order;
  order.reserve(n);
  for (uint32_t v = 0; v < n; ++v) {
    if (in_degree[v] == 0) order.push_back(v);
  }
  for (size_t head = 0; head < order.size(); ++head) {
    for (const Edge& e : graph[order[head]]) {
      if (--in_degree[e.to] == 0) order.push_back(e.to);
    }
  }
  return order;
}

// Tarjan's algorithm, iterative so that a long session cannot overflow the
// stack. Returns the strongly connected components with more than one vertex
// (the graphs here have no self-loops, so those are exactly the cyclic ones).
std::vector<std::vector<uint32_t>> CyclicComponents(const Graph& graph) {
  const size_t n = graph.size();
  std::vector<uint32_t> index(n, kNone);
  std::vector<uint32_t> low(n, 0);
  std::vector<bool> on_stack(n, false);
  std::vector<uint32_t> stack;
  std::vector<std::pair<uint32_t, size_t>> calls;  // (vertex, next edge to visit)
  uint32_t next_index = 0;
  std::vector<std::vector<uint32_t>> components;

  auto visit = [&](uint32_t v) {
    index[v] = low[v] = next_index++;
    stack.push_back(v);
    on_stack[v] = true;
    calls.emplace_back(v, 0);
  };
  for (uint32_t root = 0; root < n; ++root) {
    if (index[root] != kNone) continue;
    visit(root);
    while (!calls.empty()) {
      const uint32_t v = calls.back().first;
      const size_t edge = calls.back().second;
      if (edge < graph[v].size()) {
        ++calls.back().second;
        const uint32_t w = graph[v][edge].to;
        if (index[w] == kNone) {
          visit(w);
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
        continue;
      }
      calls.pop_back();
      if (!calls.empty()) {
        const uint32_t parent = calls.back().first;
        low[parent] = std::min(low[parent], low[v]);
      }
      if (low[v] != index[v]) continue;
      std::vector<uint32_t> component;
      uint32_t w;
      do {
        w = stack.back();
        stack.pop_back();
        on_stack[w] = false;
        component.push_back(w);
      } while (w != v);
      if (component.size() > 1) components.push_back(std::move(component));
    }
  }
  return components;
}

// The shortest cycle through the smallest vertex of `component` (the earliest
// op, which makes reports stable), found by a breadth-first search that
// stays inside the component.
Cycle ShortestCycleIn(const Graph& graph, const std::vector<uint32_t>& component) {
  const uint32_t root = *std::min_element(component.begin(), component.end());
  std::unordered_map<uint32_t, std::pair<uint32_t, EdgeKind>> parent;  // vertex -> (from, kind)
  std::vector<bool> in_component(graph.size(), false);
  for (uint32_t v : component) in_component[v] = true;

  std::vector<uint32_t> queue = {root};
  parent.emplace(root, std::make_pair(kNone, EdgeKind::kPO));
  for (size_t head = 0; head < queue.size(); ++head) {
    const uint32_t v = queue[head];
    for (const Edge& e : graph[v]) {
      if (!in_component[e.to]) continue;
      if (e.to == root) {
        Cycle cycle;
        cycle.kinds.push_back(e.kind);
        for (uint32_t u = v; u != root; u = parent[u].first) {
          cycle.ops.push_back(u);
          cycle.kinds.push_back(parent[u].second);
        }
        cycle.ops.push_back(root);
        std::reverse(cycle.ops.begin(), cycle.ops.end());
        std::reverse(cycle.kinds.begin(), cycle.kinds.end());
        return cycle;
      }
      if (parent.emplace(e.to, std::make_pair(v, e.kind)).second) queue.push_back(e.to);
    }
  }
  return Cycle{};  // Unreachable for a strongly connected component.
}

bool InRange(const History& history, OpRef ref) {
  return ref.session < history.sessions.size() && ref.index < history.sessions[ref.session].size();
}

std::string OpName(const History& history, OpRef ref) {
  if (InRange(history, ref)) {
    const std::string& label = history.sessions[ref.session][ref.index].label;
    if (!label.empty()) return label;
  }
  return "s" + std::to_string(ref.session) + "#" + std::to_string(ref.index);
}

std::string ValueName(uint64_t value) { return value == 0 ? "init" : std::to_string(value); }

// "s1#3 (read x=7)": the op's name, then what it did, so that a report can
// be read without the history at hand.
std::string DescribeOp(const History& history, OpRef ref) {
  std::string out = OpName(history, ref);
  if (!InRange(history, ref)) return out;
  const Op& op = history.sessions[ref.session][ref.index];
  out += op.type == Op::Type::kWrite ? " (write " : " (read ";
  out += op.key + "=" + ValueName(op.value);
  if (op.type == Op::Type::kWrite && !op.acknowledged) out += ", unacknowledged";
  out += ")";
  return out;
}

// One run of the checker over one history. The ops of all sessions are
// given ids 0..n-1 session after session, so that within a session a
// smaller id means earlier in program order. ("Node" always means a node of
// the cluster, i.e. an entry of final_states.)
class Checker {
 public:
  explicit Checker(const History& history) : history_(history) {}

  Report Run() {
    if (!Validate()) return std::move(report_);
    Index();
    CheckThinAirReads();
    CheckFinalThinAir();
    CheckDivergence();
    BuildCausalGraph();
    // Every remaining pattern is stated in terms of an acyclic causal
    // order; with a cycle they would flag noise around it.
    if (ComputeCausalOrder()) {
      CheckStaleReads();
      CheckSessionGuarantees();
      CheckConflictOrder();
      CheckLostWrites();
    }
    std::stable_sort(report_.violations.begin(), report_.violations.end(),
                     [](const Violation& a, const Violation& b) { return a.kind < b.kind; });
    return std::move(report_);
  }

 private:
  bool Validate();
  void Index();
  void CheckThinAirReads();
  void CheckFinalThinAir();
  void CheckDivergence();
  void BuildCausalGraph();
  bool ComputeCausalOrder();
  void CheckStaleReads();
  void CheckSessionGuarantees();
  void ClassifyStaleRead(uint32_t session, uint32_t read,
                         const std::vector<std::pair<uint32_t, uint32_t>>& latest_read_from);
  void CheckConflictOrder();
  void CheckLostWrites();

  // Counts a violation of `kind` and says whether it is still within the
  // cap, i.e. whether the caller should build and Add() it.
  bool Note(ViolationKind kind) {
    return ++report_.found_by_kind[static_cast<size_t>(kind)] <= Report::kWitnessesPerKind;
  }
  void Add(ViolationKind kind, const std::vector<uint32_t>& ids, std::string description) {
    Violation violation{kind, {}, std::move(description)};
    for (uint32_t id : ids) violation.witness.push_back(refs_[id]);
    report_.violations.push_back(std::move(violation));
  }
  void ReportCycle(ViolationKind kind, const Graph& graph, const char* what);

  const Op& op(uint32_t id) const { return *ops_[id]; }
  bool IsWrite(uint32_t id) const { return op(id).type == Op::Type::kWrite; }
  std::string Describe(uint32_t id) const { return DescribeOp(history_, refs_[id]); }
  // Strict causal order; valid once ComputeCausalOrder() succeeded.
  bool CO(uint32_t a, uint32_t b) const { return reach_.Get(a, b); }
  // For a stale read: did it return the initial value or a write that
  // causally precedes `write`? This is the "older than" of every session
  // guarantee.
  bool ReturnsOlderThan(uint32_t read, uint32_t write) const {
    return source_[read] == kNone || CO(source_[read], write);
  }
  // The last active write of `key` in `session` before op `id`, or kNone.
  uint32_t LastWriteBefore(uint32_t session, uint32_t key, uint32_t id) const;
  static uint64_t SessionKey(uint32_t session, uint32_t key) {
    return (uint64_t{session} << 32) | key;
  }
  uint64_t FinalValue(size_t node_index, const std::string& key) const {
    const auto& state = history_.final_states[node_index];
    auto it = state.find(key);
    return it == state.end() ? 0 : it->second;
  }
  // The write of `value` to `key`, or kNone when there is none (0, thin air).
  uint32_t WriterOf(uint32_t key, uint64_t value) const {
    auto it = writer_.find(value);
    return it != writer_.end() && key_of_[it->second] == key ? it->second : kNone;
  }

  const History& history_;
  Report report_;

  std::vector<const Op*> ops_;  // Id -> op.
  std::vector<OpRef> refs_;     // Id -> position in the history.
  std::unordered_map<std::string, uint32_t> key_ids_;
  std::vector<uint32_t> key_of_;                   // Id -> key id.
  std::unordered_map<uint64_t, uint32_t> writer_;  // Value id -> write.
  std::vector<uint32_t> source_;                   // Read -> the write it returned, or kNone.
  std::vector<bool> active_;  // Reads, and writes that took effect or may have.
  std::vector<std::vector<uint32_t>> writes_of_key_;  // Active writes only.
  std::vector<std::vector<uint32_t>> readers_of_;     // Write -> reads of it.
  // (session, key) -> that session's active writes / reads of the key.
  std::unordered_map<uint64_t, std::vector<uint32_t>> session_writes_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> session_reads_;

  Graph causal_graph_;  // PO between consecutive active ops, and WR.
  BitMatrix reach_{0};
  std::vector<bool> stale_;  // Reads flagged WriteCOInitRead or WriteCORead.
};

bool Checker::Validate() {
  std::unordered_map<uint64_t, OpRef> first_write;
  for (uint32_t s = 0; s < history_.sessions.size(); ++s) {
    for (uint32_t i = 0; i < history_.sessions[s].size(); ++i) {
      const Op& o = history_.sessions[s][i];
      if (o.type != Op::Type::kWrite) continue;
      const OpRef ref{s, i};
      if (o.value == 0) {
        report_.input_errors.push_back(DescribeOp(history_, ref) + ": writes value id 0");
        continue;
      }
      auto [it, inserted] = first_write.emplace(o.value, ref);
      if (!inserted) {
        report_.input_errors.push_back(DescribeOp(history_, ref) + ": value id " +
                                       std::to_string(o.value) + " already written by " +
                                       DescribeOp(history_, it->second));
      }
    }
  }
  return report_.input_errors.empty();
}

void Checker::Index() {
  for (uint32_t s = 0; s < history_.sessions.size(); ++s) {
    for (uint32_t i = 0; i < history_.sessions[s].size(); ++i) {
      const Op& o = history_.sessions[s][i];
      const auto id = static_cast<uint32_t>(ops_.size());
      ops_.push_back(&o);
      refs_.push_back({s, i});
      auto [it, inserted] = key_ids_.emplace(o.key, static_cast<uint32_t>(key_ids_.size()));
      key_of_.push_back(it->second);
      if (o.type == Op::Type::kWrite) writer_.emplace(o.value, id);
    }
  }
  const auto n = static_cast<uint32_t>(ops_.size());
  source_.assign(n, kNone);
  readers_of_.assign(n, {});
  // A write that somebody observed certainly took effect; an acknowledged
  // one must have. The rest may be dropped, and are, so that a session's
  // later ops do not causally depend on a write that may never have been.
  std::vector<bool> observed(n, false);
  for (uint32_t v = 0; v < n; ++v) {
    if (IsWrite(v)) continue;
    source_[v] = WriterOf(key_of_[v], op(v).value);
    if (source_[v] == kNone) continue;
    observed[source_[v]] = true;
    readers_of_[source_[v]].push_back(v);
  }
  for (const auto& state : history_.final_states) {
    for (const auto& [key, value] : state) {
      auto key_it = key_ids_.find(key);
      if (key_it == key_ids_.end()) continue;
      const uint32_t w = WriterOf(key_it->second, value);
      if (w != kNone) observed[w] = true;
    }
  }
  active_.assign(n, true);
  writes_of_key_.assign(key_ids_.size(), {});
  for (uint32_t v = 0; v < n; ++v) {
    const uint64_t session_key = SessionKey(refs_[v].session, key_of_[v]);
    if (!IsWrite(v)) {
      session_reads_[session_key].push_back(v);
      continue;
    }
    active_[v] = op(v).acknowledged || observed[v];
    if (!active_[v]) continue;
    writes_of_key_[key_of_[v]].push_back(v);
    session_writes_[session_key].push_back(v);
  }
}

void Checker::CheckThinAirReads() {
  for (uint32_t v = 0; v < ops_.size(); ++v) {
    if (IsWrite(v) || op(v).value == 0 || source_[v] != kNone) continue;
    if (!Note(ViolationKind::kThinAirRead)) continue;
    Add(ViolationKind::kThinAirRead, {v},
        Describe(v) + " returned a value that no write of " + op(v).key + " wrote");
  }
}

// A node's final state is a read at the end of time: it too must hold a
// value somebody wrote.
void Checker::CheckFinalThinAir() {
  for (size_t i = 0; i < history_.final_states.size(); ++i) {
    for (const auto& [key, value] : history_.final_states[i]) {
      if (value == 0) continue;
      auto key_it = key_ids_.find(key);
      if (key_it != key_ids_.end() && WriterOf(key_it->second, value) != kNone) continue;
      if (!Note(ViolationKind::kThinAirRead)) continue;
      Add(ViolationKind::kThinAirRead, {},
          "final state of node " + std::to_string(i) + " holds " + key + "=" +
              std::to_string(value) + ", which no write of " + key + " wrote");
    }
  }
}

// Causal+ promises that nodes which have seen the same writes hold the same
// values. Each key is reported once, against node 0.
void Checker::CheckDivergence() {
  const auto& states = history_.final_states;
  std::set<std::string> keys;
  for (const auto& state : states) {
    for (const auto& entry : state) keys.insert(entry.first);
  }
  for (const std::string& key : keys) {
    const uint64_t first = FinalValue(0, key);
    for (size_t i = 1; i < states.size(); ++i) {
      const uint64_t other = FinalValue(i, key);
      if (other == first) continue;
      if (Note(ViolationKind::kDivergence)) {
        std::vector<uint32_t> witness;
        auto key_it = key_ids_.find(key);
        for (uint64_t value : {first, other}) {
          const uint32_t w = key_it == key_ids_.end() ? kNone : WriterOf(key_it->second, value);
          if (w != kNone) witness.push_back(w);
        }
        Add(ViolationKind::kDivergence, witness,
            "nodes 0 and " + std::to_string(i) + " diverged on " + key + ": node 0 holds " + key +
                "=" + ValueName(first) + ", node " + std::to_string(i) + " holds " + key + "=" +
                ValueName(other));
      }
      break;
    }
  }
}

void Checker::BuildCausalGraph() {
  causal_graph_.assign(ops_.size(), {});
  uint32_t id = 0;
  for (const auto& session : history_.sessions) {
    // Program order links consecutive active ops; a dropped write is
    // bridged over, so its neighbours stay ordered.
    uint32_t previous = kNone;
    for (size_t i = 0; i < session.size(); ++i, ++id) {
      if (!active_[id]) continue;
      if (previous != kNone) causal_graph_[previous].push_back({id, EdgeKind::kPO});
      previous = id;
    }
  }
  for (uint32_t v = 0; v < ops_.size(); ++v) {
    if (source_[v] != kNone) causal_graph_[source_[v]].push_back({v, EdgeKind::kWR});
  }
}

void Checker::ReportCycle(ViolationKind kind, const Graph& graph, const char* what) {
  for (const auto& component : CyclicComponents(graph)) {
    if (!Note(kind)) continue;
    const Cycle cycle = ShortestCycleIn(graph, component);
    std::string description = std::string(what) + ": ";
    for (size_t i = 0; i < cycle.ops.size(); ++i) {
      description += Describe(cycle.ops[i]) + " -" + std::string(EdgeName(cycle.kinds[i])) + "-> ";
    }
    if (!cycle.ops.empty()) description += OpName(history_, refs_[cycle.ops[0]]);
    Add(kind, cycle.ops, std::move(description));
  }
}

bool Checker::ComputeCausalOrder() {
  const std::vector<uint32_t> order = TopologicalOrder(causal_graph_);
  if (order.size() < ops_.size()) {
    ReportCycle(ViolationKind::kCyclicCO, causal_graph_, "causal order has a cycle");
    return false;
  }
  // Successors come later in a topological order, so walking it backwards
  // finds every successor's reach complete.
  reach_ = BitMatrix(ops_.size());
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    for (const Edge& e : causal_graph_[*it]) {
      reach_.Set(*it, e.to);
      reach_.OrRowInto(*it, e.to);
    }
  }
  return true;
}

// WriteCOInitRead and WriteCORead: a read returned a value that a write it
// causally depends on had already overwritten (the initial value counts as
// written before everything).
void Checker::CheckStaleReads() {
  stale_.assign(ops_.size(), false);
  for (uint32_t r = 0; r < ops_.size(); ++r) {
    if (IsWrite(r) || (op(r).value != 0 && source_[r] == kNone)) continue;
    const uint32_t w1 = source_[r];
    for (uint32_t w2 : writes_of_key_[key_of_[r]]) {
      if (w2 == w1 || !CO(w2, r) || (w1 != kNone && !CO(w1, w2))) continue;
      stale_[r] = true;
      if (w1 == kNone) {
        if (Note(ViolationKind::kWriteCOInitRead)) {
          Add(ViolationKind::kWriteCOInitRead, {w2, r},
              Describe(r) + " returned the initial value although " + Describe(w2) +
                  " causally precedes it");
        }
      } else if (Note(ViolationKind::kWriteCORead)) {
        Add(ViolationKind::kWriteCORead, {w1, w2, r},
            Describe(r) + " returned " + Describe(w1) + ", which was overwritten by " +
                Describe(w2) + " in its causal past (" + OpName(history_, refs_[w1]) + " -CO-> " +
                OpName(history_, refs_[w2]) + " -CO-> " + OpName(history_, refs_[r]) + ")");
      }
      break;
    }
  }
}

uint32_t Checker::LastWriteBefore(uint32_t session, uint32_t key, uint32_t id) const {
  auto it = session_writes_.find(SessionKey(session, key));
  if (it == session_writes_.end()) return kNone;
  const auto& writes = it->second;
  auto pos = std::lower_bound(writes.begin(), writes.end(), id);
  return pos == writes.begin() ? kNone : *std::prev(pos);
}

// Every session guarantee broken by a read makes that read stale in the
// causal sense (its session's history puts the newer write in its causal
// past), so only stale reads need classifying. That keeps the quadratic
// searches below off the common, valid path.
void Checker::CheckSessionGuarantees() {
  const auto session_count = static_cast<uint32_t>(history_.sessions.size());
  uint32_t id = 0;
  for (uint32_t t = 0; t < session_count; ++t) {
    // Per other session s: the PO-latest write of s that session t has read
    // so far, and the read. Only the latest matters, since everything s did
    // before it precedes it too.
    std::vector<std::pair<uint32_t, uint32_t>> latest_read_from(session_count, {kNone, kNone});
    for (size_t i = 0; i < history_.sessions[t].size(); ++i, ++id) {
      if (IsWrite(id)) continue;
      if (stale_[id]) ClassifyStaleRead(t, id, latest_read_from);
      const uint32_t w = source_[id];
      if (w == kNone || refs_[w].session == t) continue;
      auto& latest = latest_read_from[refs_[w].session];
      if (latest.first == kNone || w > latest.first) latest = {w, id};
    }
  }
}

void Checker::ClassifyStaleRead(
    uint32_t t, uint32_t r, const std::vector<std::pair<uint32_t, uint32_t>>& latest_read_from) {
  const uint32_t key = key_of_[r];
  std::vector<uint32_t> returned;  // The write r returned, for witnesses.
  if (source_[r] != kNone) returned.push_back(source_[r]);
  auto with = [&](std::vector<uint32_t> ids) {
    ids.insert(ids.end(), returned.begin(), returned.end());
    return ids;
  };
  const std::string got = Describe(r);

  const uint32_t own = LastWriteBefore(t, key, r);
  if (own != kNone && ReturnsOlderThan(r, own) && Note(ViolationKind::kReadYourWrites)) {
    Add(ViolationKind::kReadYourWrites, with({own, r}),
        got + " does not reflect its session's earlier " + Describe(own));
  }

  // r itself is in this list, so it exists.
  for (uint32_t r1 : session_reads_.at(SessionKey(t, key))) {
    if (r1 >= r) break;
    if (source_[r1] == kNone || !ReturnsOlderThan(r, source_[r1])) continue;
    if (Note(ViolationKind::kMonotonicReads)) {
      Add(ViolationKind::kMonotonicReads, with({r1, r}),
          got + " is older than what its session's earlier " + Describe(r1) + " returned");
    }
    break;
  }

  bool monotonic_writes = false;
  bool writes_follow_reads = false;
  for (uint32_t s = 0; s < latest_read_from.size(); ++s) {
    const auto [w2, r2] = latest_read_from[s];
    if (w2 == kNone) continue;
    const uint32_t w1 = LastWriteBefore(s, key, w2);
    if (!monotonic_writes && w1 != kNone && ReturnsOlderThan(r, w1)) {
      monotonic_writes = true;
      if (Note(ViolationKind::kMonotonicWrites)) {
        Add(ViolationKind::kMonotonicWrites, with({w1, w2, r2, r}),
            got + " is older than " + Describe(w1) + ", which its session wrote before " +
                Describe(w2) + ", already seen by " + Describe(r2));
      }
    }
    auto s_reads = session_reads_.find(SessionKey(s, key));
    if (writes_follow_reads || s_reads == session_reads_.end()) continue;
    for (uint32_t r1 : s_reads->second) {
      if (r1 >= w2) break;
      if (source_[r1] == kNone || !ReturnsOlderThan(r, source_[r1])) continue;
      writes_follow_reads = true;
      if (Note(ViolationKind::kWritesFollowReads)) {
        Add(ViolationKind::kWritesFollowReads, with({r1, w2, r2, r}),
            got + " is older than what " + Describe(r1) + " returned before its session wrote " +
                Describe(w2) + ", already seen by " + Describe(r2));
      }
      break;
    }
  }
}

// CyclicCF: write w1 is ordered before w2 (w1 CF w2) when some read returns
// w2 while w1 is in its causal past; under causal convergence that order is
// one every node must agree on, so it may not cycle with CO.
void Checker::CheckConflictOrder() {
  Graph graph = causal_graph_;
  bool any = false;
  std::vector<uint32_t> stamp(ops_.size(), kNone);  // Dedups edges into one w2.
  for (uint32_t w2 = 0; w2 < ops_.size(); ++w2) {
    for (uint32_t r : readers_of_[w2]) {
      for (uint32_t w1 : writes_of_key_[key_of_[w2]]) {
        // w1 CO w2 adds nothing CO does not already order. w2 CO w1 would
        // be a two-edge cycle that is exactly a WriteCORead, already
        // reported more specifically; leaving it out keeps CyclicCF for
        // conflicts CO alone does not explain, and changes no verdict.
        if (w1 == w2 || stamp[w1] == w2 || !CO(w1, r) || CO(w1, w2) || CO(w2, w1)) continue;
        stamp[w1] = w2;
        graph[w1].push_back({w2, EdgeKind::kCF});
        any = true;
      }
    }
  }
  if (!any || TopologicalOrder(graph).size() == ops_.size()) return;
  ReportCycle(ViolationKind::kCyclicCF, graph,
              "conflicting writes are ordered differently by different reads");
}

// After all traffic is delivered, every node must reflect every
// acknowledged write: it may hold a concurrent write of the key that won,
// or a later one, but neither nothing nor something the write overwrote.
void Checker::CheckLostWrites() {
  for (size_t i = 0; i < history_.final_states.size(); ++i) {
    for (uint32_t w = 0; w < ops_.size(); ++w) {
      if (!IsWrite(w) || !op(w).acknowledged) continue;
      const uint64_t value = FinalValue(i, op(w).key);
      const uint32_t held = WriterOf(key_of_[w], value);
      if (held == w || (value != 0 && held == kNone)) continue;  // Thin air: reported already.
      if (held != kNone && !CO(held, w)) continue;
      if (!Note(ViolationKind::kLostWrite)) continue;
      std::vector<uint32_t> witness = {w};
      std::string holds = op(w).key + "=init";
      if (held != kNone) {
        witness.push_back(held);
        holds = Describe(held) + ", which causally precedes it";
      }
      Add(ViolationKind::kLostWrite, witness,
          "node " + std::to_string(i) + " lost acknowledged " + Describe(w) + ": it ends with " +
              holds);
    }
  }
}

}  // namespace

std::string_view ViolationName(ViolationKind kind) {
  switch (kind) {
    case ViolationKind::kThinAirRead:
      return "ThinAirRead";
    case ViolationKind::kCyclicCO:
      return "CyclicCO";
    case ViolationKind::kWriteCOInitRead:
      return "WriteCOInitRead";
    case ViolationKind::kWriteCORead:
      return "WriteCORead";
    case ViolationKind::kCyclicCF:
      return "CyclicCF";
    case ViolationKind::kReadYourWrites:
      return "ReadYourWrites";
    case ViolationKind::kMonotonicReads:
      return "MonotonicReads";
    case ViolationKind::kMonotonicWrites:
      return "MonotonicWrites";
    case ViolationKind::kWritesFollowReads:
      return "WritesFollowReads";
    case ViolationKind::kLostWrite:
      return "LostWrite";
    case ViolationKind::kDivergence:
      return "Divergence";
  }
  return "Unknown";
}

std::string Report::ToString(const History& history) const {
  if (ok()) return "causal check: ok\n";
  std::string out;
  for (const std::string& error : input_errors) out += "input error: " + error + "\n";
  size_t total = 0;
  for (size_t count : found_by_kind) total += count;
  if (total > 0) out += "causal check: " + std::to_string(total) + " violation(s)\n";
  for (size_t i = 0; i < violations.size(); ++i) {
    const Violation& v = violations[i];
    out += "  " + std::string(ViolationName(v.kind)) + ": " + v.description + "\n";
    for (OpRef ref : v.witness) out += "      " + DescribeOp(history, ref) + "\n";
    const bool last_of_kind = i + 1 == violations.size() || violations[i + 1].kind != v.kind;
    if (!last_of_kind) continue;
    const size_t shown =
        static_cast<size_t>(std::count_if(violations.begin(), violations.end(),
                                          [&](const Violation& o) { return o.kind == v.kind; }));
    if (Count(v.kind) > shown) {
      out += "  ... and " + std::to_string(Count(v.kind) - shown) + " more " +
             std::string(ViolationName(v.kind)) + "\n";
    }
  }
  return out;
}

Report Check(const History& history) { return Checker(history).Run(); }

}  // namespace kvd::checker
