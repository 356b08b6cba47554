#pragma once

#include <napi.h>

namespace berth {

// eBPF for cgroup v2 device filtering (bpf.cc). Failures throw the addon's structured errors
// with syscall bpf_prog_load / bpf_prog_attach / bpf_prog_detach / bpf_prog_query /
// bpf_prog_get_fd_by_id; a verifier refusal also carries the verifier log as `reason`.
Napi::Value BpfProgLoadCgroupDevice(const Napi::CallbackInfo& info);
Napi::Value BpfProgAttach(const Napi::CallbackInfo& info);
Napi::Value BpfProgDetach(const Napi::CallbackInfo& info);
Napi::Value BpfProgQuery(const Napi::CallbackInfo& info);
Napi::Value BpfProgGetFdById(const Napi::CallbackInfo& info);

}  // namespace berth
