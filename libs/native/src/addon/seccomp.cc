// Compiles an OCI linux.seccomp object to classic BPF with libseccomp.
//
// Semantics follow runc, so a profile behaves the same under Berth, runc and crun:
// - syscall names libseccomp does not know are skipped and reported (`skipped`);
// - a rule whose action (with its errno) equals the default action is skipped and reported
//   (`sameAsDefault`), because libseccomp refuses it with EACCES and it changes nothing;
// - the conditions of one rule are ANDed, except when one argument index appears more than
//   once: then each condition becomes its own rule (ORed), as runc does;
// - ERRNO and TRACE without errnoRet use EPERM;
// - SCMP_ACT_NOTIFY is refused: it needs a seccomp agent, which Berth does not run.
// The filter attributes (TSYNC, LOG, SPEC_ALLOW) act when a filter is loaded, not on the
// exported program; berth-init passes those flags to seccomp(2) itself.

#include "seccomp.h"

#include <errno.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "errors.h"

namespace berth {
namespace {

constexpr const char* kOp = "seccomp_compile";

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// One parse failure: the field path and what is wrong with it.
struct Invalid {
  std::string field;
  std::string reason;
};

bool GetString(Napi::Object o, const char* key, const std::string& field, std::string* out, Invalid* bad) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) {
    *bad = {field + "." + key, "must be a string"};
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

// Optional non-negative integer below `max`; absent (undefined/null) leaves *present false.
bool GetOptUint(Napi::Object o, const char* key, const std::string& field, uint32_t max, uint32_t* out,
                bool* present, Invalid* bad) {
  Napi::Value v = o.Get(key);
  *present = false;
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsNumber()) {
    *bad = {field + "." + key, "must be a number"};
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d || d < 0 || d > max) {
    *bad = {field + "." + key, "must be an integer from 0 to " + std::to_string(max)};
    return false;
  }
  *out = static_cast<uint32_t>(d);
  *present = true;
  return true;
}

// A 64-bit argument value: a bigint (any width, taken modulo 2^64 as the kernel compares
// unsigned 64-bit words) or a safe integer number (negative ones as two's complement).
bool GetDatum(Napi::Object o, const char* key, const std::string& field, scmp_datum_t* out, Invalid* bad) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    *out = 0;
    return true;
  }
  if (v.IsBigInt()) {
    bool lossless;
    *out = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) {
      // Uint64Value is lossy for negatives too; accept those that fit in int64.
      int64_t s = v.As<Napi::BigInt>().Int64Value(&lossless);
      if (!lossless) {
        *bad = {field + "." + key, "does not fit in 64 bits"};
        return false;
      }
      *out = static_cast<scmp_datum_t>(s);
    }
    return true;
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > 9007199254740991.0) {
      *bad = {field + "." + key, "must be a safe integer or a bigint"};
      return false;
    }
    *out = d < 0 ? static_cast<scmp_datum_t>(static_cast<int64_t>(d)) : static_cast<scmp_datum_t>(d);
    return true;
  }
  *bad = {field + "." + key, "must be a number or a bigint"};
  return false;
}

bool ActionValue(const std::string& name, bool hasErrno, uint32_t errnoRet, uint32_t* out, std::string* reason) {
  uint32_t err = hasErrno ? errnoRet : EPERM;
  if (name == "SCMP_ACT_ALLOW") *out = SCMP_ACT_ALLOW;
  else if (name == "SCMP_ACT_ERRNO") *out = SCMP_ACT_ERRNO(err);
  else if (name == "SCMP_ACT_KILL") *out = SCMP_ACT_KILL;
  else if (name == "SCMP_ACT_KILL_THREAD") *out = SCMP_ACT_KILL_THREAD;
  else if (name == "SCMP_ACT_KILL_PROCESS") *out = SCMP_ACT_KILL_PROCESS;
  else if (name == "SCMP_ACT_TRAP") *out = SCMP_ACT_TRAP;
  else if (name == "SCMP_ACT_TRACE") *out = SCMP_ACT_TRACE(err);
  else if (name == "SCMP_ACT_LOG") *out = SCMP_ACT_LOG;
  else if (name == "SCMP_ACT_NOTIFY") {
    *reason = "SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which is not supported";
    return false;
  } else {
    *reason = "unknown action " + name;
    return false;
  }
  return true;
}

bool OpValue(const std::string& name, scmp_compare* out) {
  static const struct {
    const char* name;
    scmp_compare op;
  } ops[] = {
      {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  for (const auto& o : ops) {
    if (name == o.name) {
      *out = o.op;
      return true;
    }
  }
  return false;
}

// "SCMP_ARCH_X86_64" -> libseccomp's token for "x86_64"; 0 when unknown.
uint32_t ArchToken(const std::string& name) {
  static const std::string prefix = "SCMP_ARCH_";
  if (name.compare(0, prefix.size(), prefix) != 0) return 0;
  std::string lower = name.substr(prefix.size());
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return seccomp_arch_resolve_name(lower.c_str());
}

Napi::Value ThrowBad(Napi::Env env, const Invalid& bad) { return ThrowInvalid(env, kOp, bad.field, bad.reason); }

bool ExportBpf(scmp_filter_ctx ctx, std::vector<uint8_t>* out, int* err, const char** fn) {
  Fd mem;
  mem.fd = memfd_create("berth-seccomp-bpf", MFD_CLOEXEC);
  if (mem.fd < 0) {
    *err = errno;
    *fn = "memfd_create";
    return false;
  }
  int rc = seccomp_export_bpf(ctx, mem.fd);
  if (rc < 0) {
    *err = -rc;
    *fn = "seccomp_export_bpf";
    return false;
  }
  struct stat st;
  if (fstat(mem.fd, &st) != 0) {
    *err = errno;
    *fn = "fstat";
    return false;
  }
  out->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out->size()) {
    ssize_t n = pread(mem.fd, out->data() + done, out->size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *err = n < 0 ? errno : EIO;
      *fn = "pread";
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Napi::Value CompileSeccomp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "argument 0 (profile) must be an object").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object profile = info[0].As<Napi::Object>();
  Invalid bad;
  std::string reason;

  std::string defaultName;
  uint32_t defaultErrno = 0, defaultAction = 0;
  bool hasDefaultErrno;
  if (!GetString(profile, "defaultAction", "seccomp", &defaultName, &bad)) return ThrowBad(env, bad);
  if (!GetOptUint(profile, "defaultErrnoRet", "seccomp", 0xffff, &defaultErrno, &hasDefaultErrno, &bad))
    return ThrowBad(env, bad);
  if (!ActionValue(defaultName, hasDefaultErrno, defaultErrno, &defaultAction, &reason))
    return ThrowInvalid(env, kOp, "seccomp.defaultAction", reason);

  Ctx ctx(seccomp_init(defaultAction));
  if (!ctx) return ThrowInvalid(env, kOp, "seccomp.defaultAction", "libseccomp refused action " + defaultName);
  // Loading is berth-init's job; these only keep the context from doing it differently.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);

  Napi::Value archesValue = profile.Get("architectures");
  if (!archesValue.IsUndefined() && !archesValue.IsNull()) {
    if (!archesValue.IsArray()) return ThrowInvalid(env, kOp, "seccomp.architectures", "must be an array");
    Napi::Array arches = archesValue.As<Napi::Array>();
    for (uint32_t i = 0; i < arches.Length(); i++) {
      std::string field = "seccomp.architectures[" + std::to_string(i) + "]";
      Napi::Value a = arches.Get(i);
      if (!a.IsString()) return ThrowInvalid(env, kOp, field, "must be a string");
      std::string name = a.As<Napi::String>().Utf8Value();
      uint32_t token = ArchToken(name);
      if (token == 0) return ThrowInvalid(env, kOp, field, "unknown architecture " + name);
      int rc = seccomp_arch_add(ctx.get(), token);
      // The native architecture is already in a new context.
      if (rc < 0 && rc != -EEXIST) return ThrowErrno(env, -rc, "seccomp_arch_add", name.c_str());
    }
  }

  std::set<std::string> skipped, sameAsDefault;
  Napi::Value syscallsValue = profile.Get("syscalls");
  if (!syscallsValue.IsUndefined() && !syscallsValue.IsNull()) {
    if (!syscallsValue.IsArray()) return ThrowInvalid(env, kOp, "seccomp.syscalls", "must be an array");
    Napi::Array syscalls = syscallsValue.As<Napi::Array>();
    for (uint32_t i = 0; i < syscalls.Length(); i++) {
      std::string field = "seccomp.syscalls[" + std::to_string(i) + "]";
      Napi::Value entryValue = syscalls.Get(i);
      if (!entryValue.IsObject()) return ThrowInvalid(env, kOp, field, "must be an object");
      Napi::Object entry = entryValue.As<Napi::Object>();

      std::string actionName;
      uint32_t errnoRet = 0, action = 0;
      bool hasErrno;
      if (!GetString(entry, "action", field, &actionName, &bad)) return ThrowBad(env, bad);
      if (!GetOptUint(entry, "errnoRet", field, 0xffff, &errnoRet, &hasErrno, &bad)) return ThrowBad(env, bad);
      if (!ActionValue(actionName, hasErrno, errnoRet, &action, &reason))
        return ThrowInvalid(env, kOp, field + ".action", reason);

      std::vector<scmp_arg_cmp> conds;
      bool repeatedIndex = false;
      unsigned int perIndex[6] = {0, 0, 0, 0, 0, 0};
      Napi::Value argsValue = entry.Get("args");
      if (!argsValue.IsUndefined() && !argsValue.IsNull()) {
        if (!argsValue.IsArray()) return ThrowInvalid(env, kOp, field + ".args", "must be an array");
        Napi::Array args = argsValue.As<Napi::Array>();
        for (uint32_t j = 0; j < args.Length(); j++) {
          std::string argField = field + ".args[" + std::to_string(j) + "]";
          Napi::Value argValue = args.Get(j);
          if (!argValue.IsObject()) return ThrowInvalid(env, kOp, argField, "must be an object");
          Napi::Object arg = argValue.As<Napi::Object>();
          uint32_t index = 0;
          bool hasIndex;
          std::string opName;
          scmp_arg_cmp cmp{};
          if (!GetOptUint(arg, "index", argField, 5, &index, &hasIndex, &bad)) return ThrowBad(env, bad);
          if (!hasIndex) return ThrowInvalid(env, kOp, argField + ".index", "is required");
          if (!GetString(arg, "op", argField, &opName, &bad)) return ThrowBad(env, bad);
          if (!OpValue(opName, &cmp.op)) return ThrowInvalid(env, kOp, argField + ".op", "unknown operator " + opName);
          if (!GetDatum(arg, "value", argField, &cmp.datum_a, &bad)) return ThrowBad(env, bad);
          if (!GetDatum(arg, "valueTwo", argField, &cmp.datum_b, &bad)) return ThrowBad(env, bad);
          cmp.arg = index;
          if (++perIndex[index] > 1) repeatedIndex = true;
          conds.push_back(cmp);
        }
      }

      Napi::Value namesValue = entry.Get("names");
      if (!namesValue.IsArray()) return ThrowInvalid(env, kOp, field + ".names", "must be an array");
      Napi::Array names = namesValue.As<Napi::Array>();
      for (uint32_t j = 0; j < names.Length(); j++) {
        Napi::Value n = names.Get(j);
        if (!n.IsString())
          return ThrowInvalid(env, kOp, field + ".names[" + std::to_string(j) + "]", "must be a string");
        std::string name = n.As<Napi::String>().Utf8Value();
        if (action == defaultAction) {
          sameAsDefault.insert(name);
          continue;
        }
        int nr = seccomp_syscall_resolve_name(name.c_str());
        if (nr == __NR_SCMP_ERROR) {
          skipped.insert(name);
          continue;
        }
        if (repeatedIndex) {
          for (const scmp_arg_cmp& c : conds) {
            int rc = seccomp_rule_add_array(ctx.get(), action, nr, 1, &c);
            if (rc < 0) return ThrowErrno(env, -rc, "seccomp_rule_add", name.c_str());
          }
        } else {
          int rc = seccomp_rule_add_array(ctx.get(), action, nr, static_cast<unsigned int>(conds.size()),
                                          conds.empty() ? nullptr : conds.data());
          if (rc < 0) return ThrowErrno(env, -rc, "seccomp_rule_add", name.c_str());
        }
      }
    }
  }

  std::vector<uint8_t> bpf;
  int err = 0;
  const char* fn = nullptr;
  if (!ExportBpf(ctx.get(), &bpf, &err, &fn)) return ThrowErrno(env, err, fn);

  Napi::Object result = Napi::Object::New(env);
  result.Set("bpf", Napi::Buffer<uint8_t>::Copy(env, bpf.data(), bpf.size()));
  Napi::Array skippedArr = Napi::Array::New(env, skipped.size());
  uint32_t k = 0;
  for (const std::string& s : skipped) skippedArr.Set(k++, Napi::String::New(env, s));
  result.Set("skipped", skippedArr);
  Napi::Array sameArr = Napi::Array::New(env, sameAsDefault.size());
  k = 0;
  for (const std::string& s : sameAsDefault) sameArr.Set(k++, Napi::String::New(env, s));
  result.Set("sameAsDefault", sameArr);
  return result;
}

}  // namespace berth
