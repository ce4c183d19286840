// The cluster definition as the systemd units keep it: an environment file
// with a line KVD_CLUSTER=1=HOST:PORT,2=HOST:PORT,... (see
// systemd/examples/cluster.env). A file holding just the list works too.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ctl/result.h"

namespace kvd::ctl {

inline constexpr const char* kDefaultClusterFile = "/etc/kvd/cluster.env";

// "1=a:1,2=b:2" -> {"a:1", "b:2"}; ids must be 1, 2, ... in order.
client::Result<std::vector<std::string>> ParseClusterList(std::string_view list);

// The node addresses of the KVD_CLUSTER line (or bare list) in `text`.
client::Result<std::vector<std::string>> ParseClusterFile(std::string_view text);

client::Result<std::vector<std::string>> ReadClusterFile(const std::string& path);

}  // namespace kvd::ctl
