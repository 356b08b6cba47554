// Structured errors of the addon. C++ only states the facts (errno, the syscall, the paths);
// TypeScript (src/syscalls.ts) turns them into SystemError / BerthError with a message.
#pragma once

#include <napi.h>

#include <string>

namespace berth {

// Sets a pending JS Error carrying errno, code ('ENOENT'...), syscall and, when given, path
// and dest. Returns undefined so callers can `return ThrowErrno(...)`.
Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const char* path = nullptr,
                       const char* dest = nullptr);

// The same Error, not thrown (for callbacks).
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const char* path = nullptr,
                       const char* dest = nullptr);

// A caller mistake caught before any syscall (wrong JS type, unknown name in a profile):
// errno EINVAL, `syscall` names the operation, `path` names the field at fault.
Napi::Value ThrowInvalid(Napi::Env env, const char* syscall, const std::string& field,
                         const std::string& reason);

// Argument readers. Each returns false after setting a pending TypeError naming the argument.
bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out);
// A string or null/undefined (then *present is false).
bool ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out,
                  bool* present);
bool ArgInt64(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t* out);
bool ArgUint32(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t* out);

}  // namespace berth
