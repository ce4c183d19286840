// Conversions between verified wire messages and core values. Shared by
// the daemon's dispatch and the fuzz harnesses, so both exercise one path.
#pragma once

#include "daemon/core/write.h"
#include "schema/kv_generated.h"
#include "schema/view.h"

namespace kvd::io {

// REQUIRES: the envelope holding `in` passed wire::CheckEnvelope. Reuses
// `out`'s string capacity, so a scratch vector of writes stops allocating
// once warm.
inline void ToCoreWrite(const fb::Write& in, core::Write* out) {
  out->origin = in.origin();
  out->clock = core::VectorClock(wire::AsClock(in.clock()));
  out->is_delete = in.is_delete();
  out->key.assign(wire::AsBytes(in.key()));
  out->value.assign(wire::AsBytes(in.value()));
}

}  // namespace kvd::io
