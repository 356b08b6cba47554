// Child processes without fork() (spawn.cc).
#pragma once

#include <napi.h>

namespace berth {

// Adds spawn() and pipe() to the exports.
void InitSpawn(Napi::Env env, Napi::Object exports);

}  // namespace berth
