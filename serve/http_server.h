// The HTTP front of the server (cpp-httplib): OpenAI's /v1/completions and
// /v1/chat/completions (JSON or server-sent events), /v1/models, /health, /metrics
// (Prometheus) and the chat page at /. Every refusal is a 4xx with an OpenAI-style error object;
// with an API key, /v1/* requires `Authorization: Bearer KEY`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "metrics.h"
#include "scheduler.h"
#include "text_model.h"

namespace mla::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (printed when listening)
  std::string api_key;
  std::string model_name = "mla";
  int64_t max_body_bytes = 4 << 20;
  int64_t default_max_tokens = 256;  // when a request gives none (bounded by the context)
  int http_threads = 96;             // one per open connection: streams hold theirs
};

class HttpServer {
 public:
  HttpServer(Scheduler& scheduler, const TextModel& text, int64_t max_positions, Metrics& metrics,
             ServerOptions options);
  ~HttpServer();
  // Binds (throws mla::Error when the address cannot be bound) and returns the port.
  int bind();
  // Serves until stop(); call bind() first.
  void serve();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mla::serve
