// The eBPF calls Berth needs for cgroup v2 device filtering: load a BPF_PROG_TYPE_CGROUP_DEVICE
// program, attach / detach it on a cgroup directory fd, list what is attached, and turn a
// program id back into an fd. Raw bpf(2), no libbpf. The instructions come compiled from
// TypeScript (libs/cgroups device-filter.ts); this file only hands them to the kernel.

#include "bpf.h"

#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "errors.h"

namespace berth {
namespace {

long Bpf(int cmd, union bpf_attr* attr) { return syscall(SYS_bpf, cmd, attr, sizeof(*attr)); }

uint64_t Ptr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

bool ArgFd(const Napi::CallbackInfo& info, size_t i, const char* name, int* out) {
  int64_t v;
  if (!ArgInt64(info, i, name, &v)) return false;
  if (v < 0 || v > 0x7fffffff) {
    Napi::TypeError::New(info.Env(), std::string("argument ") + std::to_string(i) + " (" + name + ") must be a file descriptor")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int>(v);
  return true;
}

// Sets a pending error like ThrowErrno, with the verifier's log (when there is one) as `reason`.
Napi::Value ThrowLoad(Napi::Env env, int err, const std::string& log) {
  ThrowErrno(env, err, "bpf_prog_load");
  if (log.empty()) return env.Undefined();
  Napi::Error e = env.GetAndClearPendingException();
  e.Value().Set("reason", Napi::String::New(env, log));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

// bpfProgLoadCgroupDevice(insns: Buffer, license: string) -> prog fd (close-on-exec).
Napi::Value BpfProgLoadCgroupDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) {
    Napi::TypeError::New(env, "argument 0 (insns) must be a Buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> insns = info[0].As<Napi::Buffer<uint8_t>>();
  std::string license;
  if (!ArgString(info, 1, "license", &license)) return env.Undefined();
  if (insns.Length() == 0 || insns.Length() % sizeof(struct bpf_insn) != 0)
    return ThrowInvalid(env, "bpf_prog_load", "insns", "not a whole number of 8-byte instructions");
  // Copied: the kernel reads the buffer during the call only, but keep alignment honest.
  std::vector<struct bpf_insn> prog(insns.Length() / sizeof(struct bpf_insn));
  memcpy(prog.data(), insns.Data(), insns.Length());

  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insn_cnt = static_cast<uint32_t>(prog.size());
  attr.insns = Ptr(prog.data());
  attr.license = Ptr(license.c_str());
  strncpy(attr.prog_name, "berth_devices", sizeof attr.prog_name - 1);
  long fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return Napi::Number::New(env, static_cast<double>(fd));
  int err = errno;
  if (err != EACCES && err != EINVAL) return ThrowLoad(env, err, "");
  // The verifier refused it: load again with a log, so the caller can say why.
  std::vector<char> log(64 * 1024, '\0');
  attr.log_level = 1;
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_buf = Ptr(log.data());
  fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return Napi::Number::New(env, static_cast<double>(fd));  // a transient refusal
  int err2 = errno;
  std::string text(log.data(), strnlen(log.data(), log.size()));
  // Only the verifier's last lines are worth a message.
  if (text.size() > 2048) text = text.substr(text.size() - 2048);
  return ThrowLoad(env, err2 == ENOSPC ? err : err2, text);
}

// bpfProgAttach(progFd, targetFd, attachType, flags, replaceFd = -1)
Napi::Value BpfProgAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog, target;
  uint32_t type, flags;
  int64_t replace = -1;
  if (!ArgFd(info, 0, "progFd", &prog) || !ArgFd(info, 1, "targetFd", &target) || !ArgUint32(info, 2, "attachType", &type) ||
      !ArgUint32(info, 3, "flags", &flags))
    return env.Undefined();
  if (info.Length() > 4 && !info[4].IsUndefined() && !ArgInt64(info, 4, "replaceFd", &replace)) return env.Undefined();
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = static_cast<uint32_t>(target);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog);
  attr.attach_type = type;
  attr.attach_flags = flags;
  if (replace >= 0) attr.replace_bpf_fd = static_cast<uint32_t>(replace);
  if (Bpf(BPF_PROG_ATTACH, &attr) != 0) return ThrowErrno(env, errno, "bpf_prog_attach");
  return env.Undefined();
}

// bpfProgDetach(progFd, targetFd, attachType)
Napi::Value BpfProgDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog, target;
  uint32_t type;
  if (!ArgFd(info, 0, "progFd", &prog) || !ArgFd(info, 1, "targetFd", &target) || !ArgUint32(info, 2, "attachType", &type))
    return env.Undefined();
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = static_cast<uint32_t>(target);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog);
  attr.attach_type = type;
  if (Bpf(BPF_PROG_DETACH, &attr) != 0) return ThrowErrno(env, errno, "bpf_prog_detach");
  return env.Undefined();
}

// bpfProgQuery(targetFd, attachType) -> { attachFlags, progIds: number[] }, programs attached
// to this cgroup itself (not inherited ones).
Napi::Value BpfProgQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int target;
  uint32_t type;
  if (!ArgFd(info, 0, "targetFd", &target) || !ArgUint32(info, 1, "attachType", &type)) return env.Undefined();
  std::vector<uint32_t> ids(16);
  union bpf_attr attr;
  for (int attempt = 0; attempt < 8; attempt++) {
    memset(&attr, 0, sizeof attr);
    attr.query.target_fd = static_cast<uint32_t>(target);
    attr.query.attach_type = type;
    attr.query.prog_ids = Ptr(ids.data());
    attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
    if (Bpf(BPF_PROG_QUERY, &attr) == 0) break;
    // ENOSPC: more programs than room; prog_cnt now holds how many there are.
    if (errno != ENOSPC) return ThrowErrno(env, errno, "bpf_prog_query");
    ids.resize(attr.query.prog_cnt + 16);
    if (attempt == 7) return ThrowErrno(env, ENOSPC, "bpf_prog_query");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("attachFlags", Napi::Number::New(env, attr.query.attach_flags));
  Napi::Array list = Napi::Array::New(env, attr.query.prog_cnt);
  for (uint32_t i = 0; i < attr.query.prog_cnt && i < ids.size(); i++) list.Set(i, Napi::Number::New(env, ids[i]));
  o.Set("progIds", list);
  return o;
}

// bpfProgGetFdById(id) -> prog fd (close-on-exec).
Napi::Value BpfProgGetFdById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id;
  if (!ArgUint32(info, 0, "id", &id)) return env.Undefined();
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_id = id;
  long fd = Bpf(BPF_PROG_GET_FD_BY_ID, &attr);
  if (fd < 0) return ThrowErrno(env, errno, "bpf_prog_get_fd_by_id");
  return Napi::Number::New(env, static_cast<double>(fd));
}

}  // namespace berth
