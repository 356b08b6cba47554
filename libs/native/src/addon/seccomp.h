#pragma once

#include <napi.h>

namespace berth {

// compileSeccomp(profile) -> { bpf: Buffer, skipped: string[], sameAsDefault: string[] }
// `profile` is the OCI linux.seccomp object (action, op and arch names as strings; argument
// values as number or bigint). The result is the classic-BPF program libseccomp generates,
// as an array of struct sock_filter (8 bytes each), ready for seccomp(SECCOMP_SET_MODE_FILTER).
Napi::Value CompileSeccomp(const Napi::CallbackInfo& info);

}  // namespace berth
