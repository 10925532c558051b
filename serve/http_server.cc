#include "http_server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "mla/error.h"
#include "mla/text_stream.h"
#include "openai_api.h"
#include "sampling.h"

namespace mla::serve {
namespace {

using nlohmann::json;

const char kChatPage[] =
#include "chat_page.inc"
    ;

// What the scheduler thread hands to the HTTP thread serving one request.
struct Channel {
  std::mutex mutex;
  std::condition_variable changed;
  std::string pending;  // final text not yet sent
  bool finished = false;
  std::string finish_reason, error;
  int64_t completion_tokens = 0;
};

std::string new_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%016llx", prefix,
                static_cast<unsigned long long>(
                    (std::chrono::steady_clock::now().time_since_epoch().count() << 8) ^
                    counter.fetch_add(1)));
  return buf;
}

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.status, e.to_json());
}

std::string sse(const json& data) {
  return "data: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace

struct HttpServer::Impl {
  Scheduler& scheduler;
  const TextModel& text;
  int64_t max_positions;
  Metrics& metrics;
  ServerOptions options;
  httplib::Server http;
  int port = -1;

  Impl(Scheduler& s, const TextModel& t, int64_t positions, Metrics& m, ServerOptions o)
      : scheduler(s), text(t), max_positions(positions), metrics(m), options(std::move(o)) {
    install_routes();
  }

  void install_routes();
  void handle_completion(const httplib::Request& req, httplib::Response& res, bool chat);
};

void HttpServer::Impl::install_routes() {
  const int threads = options.http_threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_payload_max_length(static_cast<size_t>(options.max_body_bytes));
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options.api_key.empty() || req.path.rfind("/v1/", 0) != 0) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    if (req.get_header_value("Authorization") != "Bearer " + options.api_key) {
      send_error(res, {401, "invalid or missing API key (send 'Authorization: Bearer KEY')", "",
                       "authentication_error"});
      metrics.count_request(req.path, 401);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      send_error(res, {404, "no such endpoint: " + req.method + " " + req.path, "",
                       "invalid_request_error"});
    } else if (res.status == 413) {
      send_error(res, {413, "the request body is too large", "", "invalid_request_error"});
    } else {
      send_error(res, {res.status, "request refused", "", "invalid_request_error"});
    }
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        send_error(res, {500, "internal server error", "", "server_error"});
      });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}});
    metrics.count_request("/health", 200);
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.prometheus_text(), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200,
              {{"object", "list"},
               {"data", json::array({{{"id", options.model_name},
                                      {"object", "model"},
                                      {"created", 0},
                                      {"owned_by", "mla.cpp"}}})}});
    metrics.count_request("/v1/models", 200);
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kChatPage, "text/html; charset=utf-8");
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_completion(req, res, false);
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_completion(req, res, true);
  });
}

void HttpServer::Impl::handle_completion(const httplib::Request& req, httplib::Response& res,
                                         bool chat) {
  const std::string endpoint = chat ? "/v1/chat/completions" : "/v1/completions";
  CompletionRequest request;
  GenerationRequest gen;
  try {
    request = parse_completion_request(req.body, chat);
    if (!request.model.empty() && request.model != options.model_name) {
      throw ApiError{404,
                     "model '" + request.model + "' is not served here (it serves '" +
                         options.model_name + "')",
                     "model", "invalid_request_error"};
    }
    request.model = options.model_name;
    try {
      gen.prompt = chat ? text.encode_chat(request.messages) : text.encode_prompt(request.prompt);
    } catch (const Error& e) {
      throw ApiError{400, e.what(), chat ? "messages" : "prompt"};
    }
    if (gen.prompt.empty()) throw ApiError{400, "the prompt encodes to no tokens", "prompt"};
    const int64_t room = max_positions - static_cast<int64_t>(gen.prompt.size());
    if (room < 1) {
      throw ApiError{400,
                     "the prompt has " + std::to_string(gen.prompt.size()) +
                         " tokens; the model's context is " + std::to_string(max_positions),
                     chat ? "messages" : "prompt"};
    }
    if (request.max_tokens > room) {
      throw ApiError{400,
                     "max_tokens (" + std::to_string(request.max_tokens) + ") + the prompt's " +
                         std::to_string(gen.prompt.size()) +
                         " tokens exceed the model's context of " + std::to_string(max_positions) +
                         " tokens",
                     "max_tokens"};
    }
    gen.max_tokens =
        request.max_tokens > 0 ? request.max_tokens : std::min(options.default_max_tokens, room);
  } catch (const ApiError& e) {
    send_error(res, e);
    metrics.count_request(endpoint, e.status);
    return;
  }
  auto channel = std::make_shared<Channel>();
  // Scheduler-thread state of the request's text: whole UTF-8 characters, then stop strings.
  struct TextState {
    Utf8Stream utf8;
    StopMatcher stops;
  };
  std::shared_ptr<TextState> stream;
  try {
    stream = std::make_shared<TextState>(TextState{{}, StopMatcher(request.stop)});
  } catch (const Error& e) {
    send_error(res, {400, e.what(), "stop"});
    metrics.count_request(endpoint, 400);
    return;
  }
  gen.eos = text.eos_tokens();
  try {
    gen.sample = make_sampler(request.sampling, gen.prompt);
  } catch (const Error& e) {
    send_error(res, {400, e.what(), ""});
    metrics.count_request(endpoint, 400);
    return;
  }
  gen.on_token = [this, channel, stream](int32_t token) {
    const StopMatcher::Result out = stream->stops.push(stream->utf8.push(text.token_bytes(token)));
    {
      std::lock_guard lock(channel->mutex);
      channel->pending += out.text;
    }
    channel->changed.notify_all();
    return !out.stopped;
  };
  gen.on_finish = [channel, stream](FinishReason reason, int64_t generated,
                                    const std::string& error) {
    std::string tail;
    if (!stream->stops.stopped()) {
      tail = stream->stops.push(stream->utf8.finish()).text;
      if (!stream->stops.stopped()) tail += stream->stops.finish();
    }
    {
      std::lock_guard lock(channel->mutex);
      channel->pending += tail;
      channel->finished = true;
      channel->finish_reason = finish_reason_name(reason);
      channel->error = error;
      channel->completion_tokens = generated;
    }
    channel->changed.notify_all();
  };
  const int64_t prompt_tokens = static_cast<int64_t>(gen.prompt.size());
  std::shared_ptr<RequestHandle> handle;
  try {
    handle = scheduler.submit(std::move(gen));
  } catch (const QueueFull& e) {
    send_error(res, {429, e.what(), "", "rate_limit_exceeded"});
    metrics.count_request(endpoint, 429);
    return;
  } catch (const Error& e) {
    send_error(res, {400, e.what(), ""});
    metrics.count_request(endpoint, 400);
    return;
  }
  const std::string id = new_id(chat ? "chatcmpl" : "cmpl");
  const int64_t created = unix_time();
  metrics.count_request(endpoint, 200);
  if (!request.stream) {
    std::unique_lock lock(channel->mutex);
    channel->changed.wait(lock, [&] { return channel->finished; });
    if (channel->finish_reason == "error") {
      send_error(res, {500, "generation failed: " + channel->error, "", "server_error"});
      return;
    }
    CompletionResult result{channel->pending, channel->finish_reason, prompt_tokens,
                            channel->completion_tokens};
    send_json(res, 200, completion_response(request, id, created, result));
    return;
  }
  auto first = std::make_shared<bool>(true);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",  // exactly: cpp-httplib never gzips this type, so events flow at once
      [channel, handle, request, id, created, first, prompt_tokens](size_t,
                                                                    httplib::DataSink& sink) {
        std::unique_lock lock(channel->mutex);
        channel->changed.wait_for(lock, std::chrono::milliseconds(100),
                                  [&] { return channel->finished || !channel->pending.empty(); });
        std::string fresh = std::move(channel->pending);
        channel->pending.clear();
        const bool finished = channel->finished;
        const std::string reason = channel->finish_reason, error = channel->error;
        const int64_t completion_tokens = channel->completion_tokens;
        lock.unlock();
        auto write = [&](const std::string& s) {
          if (sink.write(s.data(), s.size())) return true;
          handle->cancel();  // the client went away: free its sequence at the next step
          return false;
        };
        if (!sink.is_writable()) {
          handle->cancel();
          return false;
        }
        if (!fresh.empty() || *first) {
          if (!write(sse(stream_chunk(request, id, created, fresh, "", *first)))) return false;
          *first = false;
        }
        if (!finished) return true;
        if (reason == "error") {
          if (!write(sse(
                  ApiError{500, "generation failed: " + error, "", "server_error"}.to_json()))) {
            return false;
          }
        } else {
          if (!write(sse(stream_chunk(request, id, created, "", reason, false)))) return false;
          if (request.include_usage) {
            json usage = stream_chunk(request, id, created, "", "", false);
            usage["choices"] = json::array();
            usage["usage"] = usage_json(prompt_tokens, completion_tokens);
            if (!write(sse(usage))) return false;
          }
        }
        if (!write("data: [DONE]\n\n")) return false;
        sink.done();
        return true;
      },
      [handle](bool success) {
        if (!success) handle->cancel();
      });
}

HttpServer::HttpServer(Scheduler& scheduler, const TextModel& text, int64_t max_positions,
                       Metrics& metrics, ServerOptions options)
    : impl_(std::make_unique<Impl>(scheduler, text, max_positions, metrics, std::move(options))) {}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::bind() {
  Impl& s = *impl_;
  if (s.options.port == 0) {
    s.port = s.http.bind_to_any_port(s.options.host);
  } else {
    s.port = s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
  }
  if (s.port < 0) {
    throw Error("serve: cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                " (address in use or not local?)");
  }
  return s.port;
}

void HttpServer::serve() {
  impl_->http.listen_after_bind();
}

void HttpServer::stop() {
  if (impl_->http.is_running()) impl_->http.stop();
}

}  // namespace mla::serve
