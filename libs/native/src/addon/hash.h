#pragma once

#include <napi.h>

namespace berth {

// sha256Create() -> an opaque context (External; freed by the GC).
// sha256Update(ctx, buffers: Buffer[], callback(err)) hashes the buffers, in order, on a libuv
// pool thread and then calls back on the JS thread. The buffers stay referenced (and must not be
// written) until then; one update at a time per context (a second throws EBUSY).
// sha256Digest(ctx) -> hex string; throws EBUSY while an update runs. The context is then spent.
Napi::Value Sha256Create(const Napi::CallbackInfo& info);
Napi::Value Sha256Update(const Napi::CallbackInfo& info);
Napi::Value Sha256Digest(const Napi::CallbackInfo& info);

}  // namespace berth
