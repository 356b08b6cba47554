#include "errors.h"

#include <string.h>

#include <cmath>
#include <cstdio>

namespace berth {

namespace {

std::string ErrnoName(int err) {
  // glibc >= 2.32; NULL for numbers it has no name for.
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  char buf[32];
  snprintf(buf, sizeof buf, "E%d", err);
  return buf;
}

bool ArgError(const Napi::CallbackInfo& info, size_t i, const char* name, const char* expected) {
  std::string msg = "argument " + std::to_string(i) + " (" + name + ") must be " + expected;
  Napi::TypeError::New(info.Env(), msg).ThrowAsJavaScriptException();
  return false;
}

}  // namespace

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const char* path, const char* dest) {
  ErrnoError(env, err, syscall, path, dest).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const char* path, const char* dest) {
  std::string code = ErrnoName(err);
  // The message is a placeholder; TypeScript composes the one users see.
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + code);
  Napi::Object o = e.Value();
  o.Set("errno", Napi::Number::New(env, err));
  o.Set("code", Napi::String::New(env, code));
  o.Set("syscall", Napi::String::New(env, syscall));
  if (path != nullptr) o.Set("path", Napi::String::New(env, path));
  if (dest != nullptr) o.Set("dest", Napi::String::New(env, dest));
  return e;
}

Napi::Value ThrowInvalid(Napi::Env env, const char* syscall, const std::string& field, const std::string& reason) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + field + ": " + reason);
  Napi::Object o = e.Value();
  o.Set("errno", Napi::Number::New(env, EINVAL));
  o.Set("code", Napi::String::New(env, "EINVAL"));
  o.Set("syscall", Napi::String::New(env, syscall));
  o.Set("path", Napi::String::New(env, field));
  o.Set("reason", Napi::String::New(env, reason));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out) {
  if (i >= info.Length() || !info[i].IsString()) return ArgError(info, i, name, "a string");
  *out = info[i].As<Napi::String>().Utf8Value();
  // A NUL inside would silently cut the path short in the kernel.
  if (out->find('\0') != std::string::npos) return ArgError(info, i, name, "a string without NUL bytes");
  return true;
}

bool ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out, bool* present) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) {
    *present = false;
    return true;
  }
  *present = true;
  if (!info[i].IsString()) return ArgError(info, i, name, "a string or null");
  return ArgString(info, i, name, out);
}

bool ArgInt64(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t* out) {
  if (i >= info.Length() || !info[i].IsNumber()) return ArgError(info, i, name, "a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > 9007199254740991.0)
    return ArgError(info, i, name, "a safe integer");
  *out = static_cast<int64_t>(d);
  return true;
}

bool ArgUint32(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t* out) {
  int64_t v;
  if (!ArgInt64(info, i, name, &v)) return false;
  // Flags built with JS bit operators come out as signed 32-bit numbers (1 << 31 < 0).
  if (v < -2147483648LL || v > 4294967295LL) return ArgError(info, i, name, "a 32-bit integer");
  *out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace berth
