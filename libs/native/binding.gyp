{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": [
        "src/addon/addon.cc",
        "src/addon/seccomp.cc",
        "src/addon/errors.cc",
        "src/addon/bpf.cc",
        "src/addon/spawn.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall"],
      "libraries": ["-lseccomp"]
    },
    {
      "target_name": "berth-init",
      "type": "executable",
      "sources": ["src/init/init.c", "src/init/plan.c", "src/init/mounts.c", "src/init/process.c", "src/common/util.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11", "-fno-strict-aliasing"],
      "ldflags": ["-static"]
    },
    {
      "target_name": "berth-shim",
      "type": "executable",
      "sources": ["src/shim/shim.c", "src/shim/jsonlog.c", "src/common/util.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "ldflags": ["-static"]
    }
  ]
}
