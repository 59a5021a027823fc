// server.cc: grpcpp-interop-server, the grpc++ anchor bench/run measures
// Baton against: grpc.testing.TestService on grpc++'s callback API (the one
// grpc recommends for performance), answering like baton-interop-server.
//
//   grpcpp-interop-server --port=N [--host=ADDR] [--use_tls=true
//       --cert=FILE --key=FILE] [--max_concurrent_streams=N]
//
// Implemented: EmptyCall; UnaryCall (response_size, response_status);
// StreamingOutputCall (size and interval_us per response, response_status).
// Every other method answers UNIMPLEMENTED. --max_concurrent_streams sets
// SETTINGS_MAX_CONCURRENT_STREAMS (0 = grpc's default, unlimited): a proxy
// in front opens another backend connection when one is full, which is how
// bench/run spreads nghttpx's calls over several connections.
// Prints "listening on PORT" once serving; SIGTERM or SIGINT stops it.
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "grpc/testing/test.grpc.pb.h"

using grpc::testing::Empty;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;

namespace {

grpc::Status echo_status(const grpc::testing::EchoStatus &st) {
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), st.message());
}

// StreamingOutputCall: one response per ResponseParameters, each after its
// interval_us (an Alarm, so no thread sleeps), then the status.
class OutputWriter final
    : public grpc::ServerWriteReactor<StreamingOutputCallResponse> {
public:
  explicit OutputWriter(const StreamingOutputCallRequest *req) {
    for (const auto &p : req->response_parameters())
      params_.push_back(p);
    if (req->has_response_status() && req->response_status().code() != 0)
      end_ = echo_status(req->response_status());
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    next_++;
    Next();
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> g(mu_);
    cancelled_ = true;
    alarm_.Cancel(); // its callback runs with ok = false and finishes
  }
  void OnDone() override {
    delete this;
  }

private:
  void Next() {
    if (next_ == params_.size()) {
      FinishOnce(end_);
      return;
    }
    const auto &p = params_[next_];
    if (p.interval_us() > 0) {
      std::lock_guard<std::mutex> g(mu_);
      if (cancelled_) {
        FinishLocked(grpc::Status::CANCELLED);
        return;
      }
      alarm_.Set(std::chrono::system_clock::now() +
                     std::chrono::microseconds(p.interval_us()),
                 [this](bool ok) {
                   if (!ok) {
                     FinishOnce(grpc::Status::CANCELLED);
                     return;
                   }
                   Send();
                 });
      return;
    }
    Send();
  }
  void Send() {
    resp_.mutable_payload()->set_body(
        std::string(std::max(0, params_[next_].size()), '\0'));
    StartWrite(&resp_);
  }
  void FinishOnce(const grpc::Status &st) {
    std::lock_guard<std::mutex> g(mu_);
    FinishLocked(st);
  }
  void FinishLocked(const grpc::Status &st) {
    if (finished_)
      return;
    finished_ = true;
    Finish(st);
  }

  std::vector<grpc::testing::ResponseParameters> params_;
  size_t next_ = 0;
  grpc::Status end_ = grpc::Status::OK;
  StreamingOutputCallResponse resp_;
  grpc::Alarm alarm_;
  std::mutex mu_;
  bool cancelled_ = false, finished_ = false;
};

class TestServiceImpl final
    : public grpc::testing::TestService::CallbackService {
  grpc::ServerUnaryReactor *EmptyCall(grpc::CallbackServerContext *ctx,
                                      const Empty *, Empty *) override {
    auto *r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

  grpc::ServerUnaryReactor *UnaryCall(grpc::CallbackServerContext *ctx,
                                      const SimpleRequest *req,
                                      SimpleResponse *resp) override {
    auto *r = ctx->DefaultReactor();
    if (req->has_response_status() && req->response_status().code() != 0) {
      r->Finish(echo_status(req->response_status()));
    } else if (req->response_size() < 0) {
      r->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "negative response_size"));
    } else {
      resp->mutable_payload()->set_body(
          std::string(static_cast<size_t>(req->response_size()), '\0'));
      r->Finish(grpc::Status::OK);
    }
    return r;
  }

  grpc::ServerWriteReactor<StreamingOutputCallResponse> *
  StreamingOutputCall(grpc::CallbackServerContext *,
                      const StreamingOutputCallRequest *req) override {
    return new OutputWriter(req);
  }
};

// The same methods on grpc++'s synchronous API (a thread per call from
// grpc's pool): --api=sync. Which of the two is faster depends on the load.
class SyncTestServiceImpl final : public grpc::testing::TestService::Service {
  grpc::Status EmptyCall(grpc::ServerContext *, const Empty *,
                         Empty *) override {
    return grpc::Status::OK;
  }
  grpc::Status UnaryCall(grpc::ServerContext *, const SimpleRequest *req,
                         SimpleResponse *resp) override {
    if (req->has_response_status() && req->response_status().code() != 0)
      return echo_status(req->response_status());
    if (req->response_size() < 0)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "negative response_size");
    resp->mutable_payload()->set_body(
        std::string(static_cast<size_t>(req->response_size()), '\0'));
    return grpc::Status::OK;
  }
};

bool read_file(const std::string &path, std::string *out) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// "--name=value" -> value, else nullptr.
const char *flag(const char *arg, const char *name) {
  size_t n = std::strlen(name);
  if (std::strncmp(arg, "--", 2) != 0 || std::strncmp(arg + 2, name, n) != 0 ||
      arg[2 + n] != '=')
    return nullptr;
  return arg + 3 + n;
}

int usage(const char *bad) {
  std::fprintf(stderr,
               "grpcpp-interop-server: bad flag %s\n"
               "usage: grpcpp-interop-server --port=N [--host=ADDR] "
               "[--use_tls=true --cert=FILE --key=FILE]\n"
               "       [--max_concurrent_streams=N]\n",
               bad);
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  std::string host = "0.0.0.0", cert = "certs/out/server.crt",
              key = "certs/out/server.key";
  int port = -1, max_streams = 0;
  bool tls = false, sync = false;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if ((v = flag(argv[i], "port")))
      port = std::atoi(v);
    else if ((v = flag(argv[i], "host")))
      host = v;
    else if ((v = flag(argv[i], "use_tls")))
      tls = !std::strcmp(v, "true") || !std::strcmp(v, "1");
    else if ((v = flag(argv[i], "cert")))
      cert = v;
    else if ((v = flag(argv[i], "key")))
      key = v;
    else if ((v = flag(argv[i], "api")) &&
             (!std::strcmp(v, "sync") || !std::strcmp(v, "callback")))
      sync = !std::strcmp(v, "sync");
    else if ((v = flag(argv[i], "max_concurrent_streams")))
      max_streams = std::atoi(v);
    else
      return usage(argv[i]);
  }
  if (port <= 0 || port > 65535)
    return usage("(--port is required)");

  // Block the stop signals before grpc starts its threads, so they all
  // inherit the mask and only sigwait below sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::shared_ptr<grpc::ServerCredentials> creds;
  if (tls) {
    grpc::SslServerCredentialsOptions opts;
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    if (!read_file(key, &pair.private_key) ||
        !read_file(cert, &pair.cert_chain)) {
      std::fprintf(stderr, "grpcpp-interop-server: cannot read %s or %s\n",
                   cert.c_str(), key.c_str());
      return 1;
    }
    opts.pem_key_cert_pairs.push_back(pair);
    creds = grpc::SslServerCredentials(opts);
  } else {
    creds = grpc::InsecureServerCredentials();
  }

  TestServiceImpl service;
  SyncTestServiceImpl sync_service;
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort(host + ":" + std::to_string(port), creds, &bound);
  if (sync)
    builder.RegisterService(&sync_service);
  else
    builder.RegisterService(&service);
  if (max_streams > 0)
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, max_streams);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound == 0) {
    std::fprintf(stderr, "grpcpp-interop-server: cannot listen on %s:%d\n",
                 host.c_str(), port);
    return 1;
  }
  std::printf("listening on %d\n", bound);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  return 0;
}
