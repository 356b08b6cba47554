// berth_native: thin synchronous wrappers over the kernel calls Node lacks.
//
// Every function runs on the calling JS thread and never on a libuv pool thread, so a setns()
// or unshare() here moves exactly the thread TypeScript expects. Failures throw an Error that
// carries errno, code, syscall, path (and dest); TypeScript composes the message. Constants
// (MS_*, CLONE_*...) live in TypeScript, not here.

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <malloc.h>
#include <napi.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "bpf.h"
#include "errors.h"
#include "seccomp.h"
#include "spawn.h"

namespace berth {
namespace {

#define ARG(kind, i, name, var) \
  if (!Arg##kind(info, i, name, var)) return env.Undefined()

// mount(source|null, target, fstype|null, flags, data|null)
Napi::Value Mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string source, target, fstype, data;
  bool hasSource, hasFstype, hasData;
  uint32_t flags;
  if (!ArgOptString(info, 0, "source", &source, &hasSource)) return env.Undefined();
  ARG(String, 1, "target", &target);
  if (!ArgOptString(info, 2, "fstype", &fstype, &hasFstype)) return env.Undefined();
  ARG(Uint32, 3, "flags", &flags);
  if (!ArgOptString(info, 4, "data", &data, &hasData)) return env.Undefined();
  if (mount(hasSource ? source.c_str() : nullptr, target.c_str(), hasFstype ? fstype.c_str() : nullptr, flags,
            hasData ? data.c_str() : nullptr) != 0) {
    // Argument order, as Node does for two-path calls: path = source, dest = target.
    if (hasSource) return ThrowErrno(env, errno, "mount", source.c_str(), target.c_str());
    return ThrowErrno(env, errno, "mount", target.c_str());
  }
  return env.Undefined();
}

// umount2(target, flags)
Napi::Value Umount2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string target;
  uint32_t flags;
  ARG(String, 0, "target", &target);
  ARG(Uint32, 1, "flags", &flags);
  if (umount2(target.c_str(), static_cast<int>(flags)) != 0) return ThrowErrno(env, errno, "umount2", target.c_str());
  return env.Undefined();
}

// mknod(path, mode, major, minor): mode carries the file type bits (S_IFCHR...).
Napi::Value Mknod(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  uint32_t mode, major, minor;
  ARG(String, 0, "path", &path);
  ARG(Uint32, 1, "mode", &mode);
  ARG(Uint32, 2, "major", &major);
  ARG(Uint32, 3, "minor", &minor);
  if (mknod(path.c_str(), static_cast<mode_t>(mode), makedev(major, minor)) != 0)
    return ThrowErrno(env, errno, "mknod", path.c_str());
  return env.Undefined();
}

// lchown(path, uid, gid): -1 leaves that id unchanged.
Napi::Value Lchown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int64_t uid, gid;
  ARG(String, 0, "path", &path);
  ARG(Int64, 1, "uid", &uid);
  ARG(Int64, 2, "gid", &gid);
  if (uid < -1 || uid > 0xffffffffLL || gid < -1 || gid > 0xffffffffLL)
    return ThrowErrno(env, EINVAL, "lchown", path.c_str());
  if (lchown(path.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0)
    return ThrowErrno(env, errno, "lchown", path.c_str());
  return env.Undefined();
}

// lsetxattr(path, name, value: Buffer, flags)
Napi::Value Lsetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  uint32_t flags;
  ARG(String, 0, "path", &path);
  ARG(String, 1, "name", &name);
  if (info.Length() < 3 || !info[2].IsBuffer()) {
    Napi::TypeError::New(env, "argument 2 (value) must be a Buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> value = info[2].As<Napi::Buffer<uint8_t>>();
  ARG(Uint32, 3, "flags", &flags);
  if (lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), static_cast<int>(flags)) != 0)
    return ThrowErrno(env, errno, "lsetxattr", path.c_str());
  return env.Undefined();
}

// lgetxattr(path, name) -> Buffer, or null when the attribute is absent (ENODATA).
Napi::Value Lgetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  ARG(String, 0, "path", &path);
  ARG(String, 1, "name", &name);
  // The value can change between the size probe and the read; retry on ERANGE.
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t size = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (size < 0) {
      if (errno == ENODATA) return env.Null();
      return ThrowErrno(env, errno, "lgetxattr", path.c_str());
    }
    std::vector<uint8_t> buf(static_cast<size_t>(size) + 1);
    ssize_t got = lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
    if (got >= 0) return Napi::Buffer<uint8_t>::Copy(env, buf.data(), static_cast<size_t>(got));
    if (errno == ENODATA) return env.Null();
    if (errno != ERANGE) return ThrowErrno(env, errno, "lgetxattr", path.c_str());
  }
  return ThrowErrno(env, ERANGE, "lgetxattr", path.c_str());
}

// statfs(path) -> { type, bsize, blocks, bfree, bavail, files, ffree, flags }
Napi::Value Statfs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  ARG(String, 0, "path", &path);
  struct statfs st;
  if (statfs(path.c_str(), &st) != 0) return ThrowErrno(env, errno, "statfs", path.c_str());
  Napi::Object o = Napi::Object::New(env);
  // f_type is a signed word on x86_64; magics such as 0xEF53 are small and positive, but
  // mask to 32 bits so values with the top bit set (BTRFS 0x9123683E) stay positive.
  o.Set("type", Napi::Number::New(env, static_cast<double>(static_cast<uint32_t>(st.f_type))));
  o.Set("bsize", Napi::Number::New(env, static_cast<double>(st.f_bsize)));
  o.Set("blocks", Napi::Number::New(env, static_cast<double>(st.f_blocks)));
  o.Set("bfree", Napi::Number::New(env, static_cast<double>(st.f_bfree)));
  o.Set("bavail", Napi::Number::New(env, static_cast<double>(st.f_bavail)));
  o.Set("files", Napi::Number::New(env, static_cast<double>(st.f_files)));
  o.Set("ffree", Napi::Number::New(env, static_cast<double>(st.f_ffree)));
  o.Set("flags", Napi::Number::New(env, static_cast<double>(st.f_flags)));
  return o;
}

// setns(fd, nstype): moves the calling thread only.
Napi::Value Setns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  uint32_t nstype;
  ARG(Int64, 0, "fd", &fd);
  ARG(Uint32, 1, "nstype", &nstype);
  if (setns(static_cast<int>(fd), static_cast<int>(nstype)) != 0) return ThrowErrno(env, errno, "setns");
  return env.Undefined();
}

// unshare(flags): moves the calling thread only.
Napi::Value Unshare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t flags;
  ARG(Uint32, 0, "flags", &flags);
  if (unshare(static_cast<int>(flags)) != 0) return ThrowErrno(env, errno, "unshare");
  return env.Undefined();
}

Napi::Value Gettid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(gettid()));
}

// inodeFlags(path, set, clear) -> the inode flags (FS_IOC_GETFLAGS, chattr's flags) after
// setting the bits of `set` and clearing those of `clear`; FS_IOC_SETFLAGS only when they change,
// so set = clear = 0 just reads them. The kernel reads and writes an int here, whatever the
// ioctl's declared long says.
Napi::Value InodeFlags(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  uint32_t set, clear;
  ARG(String, 0, "path", &path);
  ARG(Uint32, 1, "set", &set);
  ARG(Uint32, 2, "clear", &clear);
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, errno, "open", path.c_str());
  int flags = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) {
    int e = errno;
    close(fd);
    return ThrowErrno(env, e, "ioctl_getflags", path.c_str());
  }
  int want = static_cast<int>((static_cast<uint32_t>(flags) | set) & ~clear);
  if (want != flags && ioctl(fd, FS_IOC_SETFLAGS, &want) != 0) {
    int e = errno;
    close(fd);
    return ThrowErrno(env, e, "ioctl_setflags", path.c_str());
  }
  close(fd);
  return Napi::Number::New(env, static_cast<double>(static_cast<uint32_t>(want)));
}

// mallocTrim() -> whether glibc gave memory back: malloc_trim(0) returns the free memory at the
// top of the heap and, since glibc 2.8, free whole pages inside it (madvise MADV_DONTNEED).
Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
}

// pidfdOpen(pid) -> fd (close-on-exec by the kernel's default for pidfds).
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pid;
  ARG(Int64, 0, "pid", &pid);
  long fd = syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0);
  if (fd < 0) return ThrowErrno(env, errno, "pidfd_open");
  return Napi::Number::New(env, static_cast<double>(fd));
}

// pidfdSendSignal(pidfd, sig)
Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pidfd, sig;
  ARG(Int64, 0, "pidfd", &pidfd);
  ARG(Int64, 1, "sig", &sig);
  if (syscall(SYS_pidfd_send_signal, static_cast<int>(pidfd), static_cast<int>(sig), nullptr, 0) != 0)
    return ThrowErrno(env, errno, "pidfd_send_signal");
  return env.Undefined();
}

#undef ARG

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, Umount2, "umount2"));
  exports.Set("mknod", Napi::Function::New(env, Mknod, "mknod"));
  exports.Set("lchown", Napi::Function::New(env, Lchown, "lchown"));
  exports.Set("lsetxattr", Napi::Function::New(env, Lsetxattr, "lsetxattr"));
  exports.Set("lgetxattr", Napi::Function::New(env, Lgetxattr, "lgetxattr"));
  exports.Set("statfs", Napi::Function::New(env, Statfs, "statfs"));
  exports.Set("setns", Napi::Function::New(env, Setns, "setns"));
  exports.Set("unshare", Napi::Function::New(env, Unshare, "unshare"));
  exports.Set("gettid", Napi::Function::New(env, Gettid, "gettid"));
  exports.Set("inodeFlags", Napi::Function::New(env, InodeFlags, "inodeFlags"));
  exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim, "mallocTrim"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal, "pidfdSendSignal"));
  exports.Set("compileSeccomp", Napi::Function::New(env, CompileSeccomp, "compileSeccomp"));
  exports.Set("bpfProgLoadCgroupDevice", Napi::Function::New(env, BpfProgLoadCgroupDevice, "bpfProgLoadCgroupDevice"));
  exports.Set("bpfProgAttach", Napi::Function::New(env, BpfProgAttach, "bpfProgAttach"));
  exports.Set("bpfProgDetach", Napi::Function::New(env, BpfProgDetach, "bpfProgDetach"));
  exports.Set("bpfProgQuery", Napi::Function::New(env, BpfProgQuery, "bpfProgQuery"));
  exports.Set("bpfProgGetFdById", Napi::Function::New(env, BpfProgGetFdById, "bpfProgGetFdById"));
  InitSpawn(env, exports);
  // Bumped when a function's contract changes, so addon.ts can refuse a stale build.
  exports.Set("abiVersion", Napi::Number::New(env, 4));
  return exports;
}

}  // namespace
}  // namespace berth

static Napi::Object InitBerthNative(Napi::Env env, Napi::Object exports) { return berth::Init(env, exports); }

NODE_API_MODULE(berth_native, InitBerthNative)
