// WireError: why a frame or a message was refused, as a value. Everything in
// kvd::wire reports bad input this way and never throws or asserts on bytes
// from the network; the caller answers with the status and message (an
// Error frame, or a Reply for a client request) and logs it once.
#pragma once

#include <string>

#include "schema/kv_generated.h"

namespace kvd::wire {

struct WireError {
  fb::Status status = fb::Status::BAD_REQUEST;
  std::string message;
};

}  // namespace kvd::wire
