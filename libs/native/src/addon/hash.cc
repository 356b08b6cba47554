// SHA-256 of layer streams off the JS thread. The only work of the addon that runs on a libuv
// pool thread: it touches no kernel state (no namespace, no fd), only memory the JS side keeps
// referenced until the callback. OpenSSL is the one Node links and exports.
#include "hash.h"

#include <errno.h>
#include <openssl/evp.h>

#include <string>
#include <vector>

#include "errors.h"

namespace berth {
namespace {

struct HashCtx {
  EVP_MD_CTX* md = nullptr;
  bool busy = false;
  bool spent = false;
};

void FreeCtx(Napi::Env, HashCtx* c) {
  if (c->md != nullptr) EVP_MD_CTX_free(c->md);
  delete c;
}

HashCtx* CtxArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "argument 0 (ctx) must be a context from sha256Create").ThrowAsJavaScriptException();
    return nullptr;
  }
  return info[0].As<Napi::External<HashCtx>>().Data();
}

class UpdateWorker : public Napi::AsyncWorker {
 public:
  UpdateWorker(Napi::Function cb, Napi::External<HashCtx> ctxHolder, HashCtx* ctx) : Napi::AsyncWorker(cb, "berth.sha256"), ctx_(ctx) {
    ctxRef_ = Napi::Persistent(ctxHolder);
  }
  void Add(Napi::Buffer<uint8_t> b) {
    pieces_.push_back({b.Data(), b.Length()});
    refs_.push_back(Napi::Persistent(b));
  }
  void Execute() override {
    for (const auto& p : pieces_) {
      if (EVP_DigestUpdate(ctx_->md, p.data, p.len) != 1) {
        SetError("EVP_DigestUpdate failed");
        return;
      }
    }
  }
  void OnOK() override {
    ctx_->busy = false;
    Callback().Call({Env().Null()});
  }
  void OnError(const Napi::Error& e) override {
    ctx_->busy = false;
    ctx_->spent = true;
    Callback().Call({e.Value()});
  }

 private:
  struct Piece {
    const uint8_t* data;
    size_t len;
  };
  HashCtx* ctx_;
  Napi::Reference<Napi::External<HashCtx>> ctxRef_;
  std::vector<Piece> pieces_;
  std::vector<Napi::Reference<Napi::Buffer<uint8_t>>> refs_;
};

}  // namespace

Napi::Value Sha256Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* c = new HashCtx();
  c->md = EVP_MD_CTX_new();
  if (c->md == nullptr || EVP_DigestInit_ex(c->md, EVP_sha256(), nullptr) != 1) {
    FreeCtx(env, c);
    return ThrowErrno(env, ENOMEM, "sha256_init");
  }
  return Napi::External<HashCtx>::New(env, c, FreeCtx);
}

Napi::Value Sha256Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HashCtx* c = CtxArg(info);
  if (c == nullptr) return env.Undefined();
  if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsFunction()) {
    Napi::TypeError::New(env, "sha256Update(ctx, buffers: Buffer[], callback)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (c->busy || c->spent) return ThrowErrno(env, c->busy ? EBUSY : EINVAL, "sha256_update");
  Napi::Array list = info[1].As<Napi::Array>();
  auto* w = new UpdateWorker(info[2].As<Napi::Function>(), info[0].As<Napi::External<HashCtx>>(), c);
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list[i];
    if (!v.IsBuffer()) {
      delete w;
      Napi::TypeError::New(env, "sha256Update: every piece must be a Buffer").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    w->Add(v.As<Napi::Buffer<uint8_t>>());
  }
  c->busy = true;
  w->Queue();
  return env.Undefined();
}

Napi::Value Sha256Digest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HashCtx* c = CtxArg(info);
  if (c == nullptr) return env.Undefined();
  if (c->busy || c->spent) return ThrowErrno(env, c->busy ? EBUSY : EINVAL, "sha256_digest");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(c->md, out, &len) != 1) return ThrowErrno(env, EINVAL, "sha256_digest");
  c->spent = true;
  static const char hex[] = "0123456789abcdef";
  std::string s(len * 2, '0');
  for (unsigned int i = 0; i < len; i++) {
    s[2 * i] = hex[out[i] >> 4];
    s[2 * i + 1] = hex[out[i] & 15];
  }
  return Napi::String::New(env, s);
}

}  // namespace berth
