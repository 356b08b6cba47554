// Starting child processes off the JS thread and without fork().
//
// Node's child_process forks the whole calling process on its JS thread (page tables copied:
// several ms for berthd per container start). Here the JS thread only queues a request (copies
// of the child's fds, argv, the environment) and returns; one long-lived thread of the addon
// runs posix_spawn, which glibc does with clone(CLONE_VM | CLONE_VFORK): nothing of the process
// is copied, and only that thread waits until the child has exec'd. The same thread watches
// every child it started (a pidfd each, in one poll) and reaps it when it exits, so no child
// stays a zombie. Results come back to JS through a thread-safe function per request:
// ("spawned", pid) or ("error", Error), then, when the exit was asked for, ("exit", code,
// signal): the JS thread reaps that child itself just before the call, so its pid is not
// reused while JS may still signal it.
//
// The child gets exactly the fds it is given (0..n-1), every other fd closed, every signal
// unblocked and at its default disposition (as libuv does for child_process), the environment
// as it was when JS asked, optionally its own session.

#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "errors.h"

extern char** environ;

namespace berth {
namespace {

struct Event {
  enum Kind { kSpawned, kFailed, kExited } kind;
  pid_t pid;
  int err;
  std::string path;  // kFailed
};

// Runs on the JS thread.
void CallJs(Napi::Env env, Napi::Function callback, void* /*context*/, Event* ev) {
  Event e = std::move(*ev);
  delete ev;
  int status = 0;
  pid_t got = -1;
  if (e.kind == Event::kExited) {
    // A zombie by now (the spawner saw its pidfd turn readable): reap it here, so that the pid
    // is released only once JS knows.
    do got = waitpid(e.pid, &status, 0);
    while (got < 0 && errno == EINTR);
  }
  if (env == nullptr || callback.IsEmpty()) return;  // the environment is going away
  switch (e.kind) {
    case Event::kSpawned:
      callback.Call({Napi::String::New(env, "spawned"), Napi::Number::New(env, e.pid)});
      break;
    case Event::kFailed:
      callback.Call({Napi::String::New(env, "error"), ErrnoError(env, e.err, "spawn", e.path.c_str()).Value()});
      break;
    case Event::kExited: {
      Napi::Value code = env.Null(), signal = env.Null();
      if (got == e.pid && WIFEXITED(status)) code = Napi::Number::New(env, WEXITSTATUS(status));
      if (got == e.pid && WIFSIGNALED(status)) signal = Napi::Number::New(env, WTERMSIG(status));
      callback.Call({Napi::String::New(env, "exit"), code, signal});
      break;
    }
  }
}

using Callback = Napi::TypedThreadSafeFunction<void, Event, CallJs>;

struct Request {
  std::string path;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  // The child's fd i: a close-on-exec copy of ours (numbered at least fds.size(), so no dup2
  // of the child lands on a source still to come), or -1 for /dev/null.
  std::vector<int> fds;
  bool setsid = false;
  bool notify = false;  // report the exit (else the spawner reaps silently)
  Callback tsfn;
};

struct Child {
  pid_t pid;
  int pidfd;
  bool notify;
  Callback tsfn;
};

std::mutex mu;
std::deque<Request*> queue;
int wake_fd = -1;  // eventfd: requests are queued
bool thread_started = false;

int DoSpawn(Request* r, pid_t* pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  int n = static_cast<int>(r->fds.size());
  int err = 0;
  for (int i = 0; i < n && err == 0; i++) {
    if (r->fds[i] < 0)
      err = posix_spawn_file_actions_addopen(&fa, i, "/dev/null", O_RDWR, 0);
    else
      err = posix_spawn_file_actions_adddup2(&fa, r->fds[i], i);
  }
  if (err == 0) err = posix_spawn_file_actions_addclosefrom_np(&fa, n);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  // sigfillset leaves out glibc's two internal signals (SIGCANCEL 32, SIGSETXID 33), and for a
  // signal outside this set glibc's child sets an internal one to SIG_IGN (no handler of ours may
  // run in the child), which would outlive the exec, down to the container process. Setting
  // their bits directly (sigaddset refuses them) makes the child reset them to SIG_DFL too, as
  // after fork + exec. The tests check that /proc/PID/status SigIgn is 0.
  all.__val[0] |= (1UL << (32 - 1)) | (1UL << (33 - 1));
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (r->setsid) flags |= POSIX_SPAWN_SETSID;
  if (err == 0) err = posix_spawnattr_setflags(&attr, flags);
  if (err == 0) err = posix_spawnattr_setsigmask(&attr, &none);
  if (err == 0) err = posix_spawnattr_setsigdefault(&attr, &all);
  if (err == 0) {
    std::vector<char*> argv, envp;
    for (auto& s : r->argv) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    for (auto& s : r->env) envp.push_back(const_cast<char*>(s.c_str()));
    envp.push_back(nullptr);
    err = posix_spawn(pid, r->path.c_str(), &fa, &attr, argv.data(), envp.data());
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  return err;
}

void Reap(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

void* SpawnerMain(void*) {
  std::vector<Child> children;
  std::vector<pollfd> pfds;
  for (;;) {
    pfds.clear();
    pfds.push_back({wake_fd, POLLIN, 0});
    for (auto& c : children) pfds.push_back({c.pidfd, POLLIN, 0});
    if (poll(pfds.data(), pfds.size(), -1) < 0) continue;  // EINTR (signals are blocked anyway)

    // Exits first: a pidfd turns readable when its process has exited (a zombie until reaped).
    std::vector<Child> still;
    for (size_t i = 0; i < children.size(); i++) {
      Child& c = children[i];
      if ((pfds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        still.push_back(c);
        continue;
      }
      close(c.pidfd);
      if (c.notify) {
        c.tsfn.BlockingCall(new Event{Event::kExited, c.pid, 0, {}});
        c.tsfn.Release();
      } else {
        Reap(c.pid);
      }
    }
    children.swap(still);

    if ((pfds[0].revents & POLLIN) == 0) continue;
    uint64_t count;
    (void)!read(wake_fd, &count, sizeof count);
    std::deque<Request*> todo;
    {
      std::lock_guard<std::mutex> lock(mu);
      todo.swap(queue);
    }
    for (Request* r : todo) {
      pid_t pid = 0;
      int err = DoSpawn(r, &pid);
      for (int fd : r->fds)
        if (fd >= 0) close(fd);
      if (err != 0) {
        r->tsfn.BlockingCall(new Event{Event::kFailed, 0, err, r->path});
        r->tsfn.Release();
        delete r;
        continue;
      }
      r->tsfn.BlockingCall(new Event{Event::kSpawned, pid, 0, {}});
      int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
      if (pidfd < 0) {
        // Without a pidfd (never on this kernel) wait for this child right here: late for the
        // children queued behind it, but none is left a zombie.
        siginfo_t si;
        while (waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
        }
        if (r->notify) r->tsfn.BlockingCall(new Event{Event::kExited, pid, 0, {}});
        else Reap(pid);
        r->tsfn.Release();
        delete r;
        continue;
      }
      // Without an exit to report, nothing more reaches JS: let go of its event loop now.
      if (!r->notify) r->tsfn.Release();
      children.push_back({pid, pidfd, r->notify, r->tsfn});
      delete r;
    }
  }
  return nullptr;
}

// The spawner thread, started on first use: detached, a small stack, every signal blocked
// (signals are the JS thread's; posix_spawn gives the child an empty mask).
bool EnsureSpawner() {
  std::lock_guard<std::mutex> lock(mu);
  if (thread_started) return true;
  if (wake_fd < 0) wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) return false;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  sigset_t all;
  sigfillset(&all);
  pthread_attr_setsigmask_np(&attr, &all);
  pthread_t t;
  int err = pthread_create(&t, &attr, SpawnerMain, nullptr);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    errno = err;
    return false;
  }
  thread_started = true;
  return true;
}

// spawn(path, argv: string[], fds: (number|null)[], setsid: boolean, notifyExit: boolean,
//       callback: (what: 'spawned'|'error'|'exit', a, b) => void)
// Queues the start of `path` (run as is, no PATH search) and returns. The child's fd i is a
// dup of fds[i] (null: /dev/null read-write), every fd from fds.length up is closed; the fds
// are copied before this returns, so the caller may close its own at once. callback gets
// ('spawned', pid) or ('error', Error with errno/code/syscall 'spawn'/path), then with
// notifyExit ('exit', code|null, signal|null). A bad fd (EBADF) throws here.
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* r = new Request();
  std::unique_ptr<Request> owned(r);
  auto closeCopies = [r]() {
    for (int fd : r->fds)
      if (fd >= 0) close(fd);
    r->fds.clear();
  };
  if (!ArgString(info, 0, "path", &r->path)) return env.Undefined();
  auto typeError = [&](const char* msg) {
    closeCopies();
    Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
    return env.Undefined();
  };
  if (info.Length() < 6 || !info[1].IsArray() || !info[2].IsArray() || !info[5].IsFunction())
    return typeError("spawn(path, argv[], fds[], setsid, notifyExit, callback)");
  Napi::Array argv = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < argv.Length(); i++) {
    Napi::Value v = argv.Get(i);
    if (!v.IsString()) return typeError("argument 1 (argv) must be an array of strings");
    r->argv.push_back(v.As<Napi::String>().Utf8Value());
  }
  r->setsid = info[3].ToBoolean().Value();
  r->notify = info[4].ToBoolean().Value();
  Napi::Array fds = info[2].As<Napi::Array>();
  int n = static_cast<int>(fds.Length());
  if (n > 64) return ThrowInvalid(env, "spawn", "fds", "at most 64 fds");
  for (int i = 0; i < n; i++) {
    Napi::Value v = fds.Get(static_cast<uint32_t>(i));
    if (v.IsNull() || v.IsUndefined()) {
      r->fds.push_back(-1);
      continue;
    }
    if (!v.IsNumber() || v.As<Napi::Number>().Int32Value() < 0) return typeError("argument 2 (fds) must hold fds or null");
    int copy = fcntl(v.As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, n);
    if (copy < 0) {
      int e = errno;
      closeCopies();
      return ThrowErrno(env, e, "spawn", r->path.c_str());
    }
    r->fds.push_back(copy);
  }
  for (char** e = environ; e != nullptr && *e != nullptr; e++) r->env.emplace_back(*e);
  if (!EnsureSpawner()) {
    int e = errno;
    closeCopies();
    return ThrowErrno(env, e, "spawn", r->path.c_str());
  }
  r->tsfn = Callback::New(env, info[5].As<Napi::Function>(), "berth-spawn", 0, 1);
  {
    std::lock_guard<std::mutex> lock(mu);
    queue.push_back(owned.release());
  }
  uint64_t one = 1;
  (void)!write(wake_fd, &one, sizeof one);
  return env.Undefined();
}

// pipe(minCapacity) -> [readFd, writeFd], both close-on-exec; the pipe holds at least
// minCapacity bytes (F_SETPIPE_SZ when its default is smaller), so a writer of that much into
// the empty pipe never blocks.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t min;
  if (!ArgUint32(info, 0, "minCapacity", &min)) return env.Undefined();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ThrowErrno(env, errno, "pipe2");
  if (min > 0) {
    int have = fcntl(fds[1], F_GETPIPE_SZ);
    if (have < 0 || static_cast<uint32_t>(have) < min) {
      if (fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(min)) < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return ThrowErrno(env, e, "fcntl_setpipe_sz");
      }
    }
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fds[0]));
  out.Set(1u, Napi::Number::New(env, fds[1]));
  return out;
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, Spawn, "spawn"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
}

}  // namespace berth
