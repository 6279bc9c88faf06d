#include "exporter/web/http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace geoip {
namespace {

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
  }
  return "Status";
}

bool IsLoopback(const char* address) {
  in_addr v4{};
  if (inet_pton(AF_INET, address, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, address, &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

void SendResponse(struct mg_connection* connection, const HttpResponse& response,
                  const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  std::string head = absl::StrFormat(
      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
      "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
      response.status, ReasonPhrase(response.status), response.content_type, response.body.size());
  if (response.status >= 400) {
    // An error may leave an unread body (or unparsed headers) behind: never
    // read the rest of this connection as a next request, and never wait
    // for a body that will not be used.
    mg_disable_connection_keep_alive(connection);
    head += "Connection: close\r\n";
  }
  for (const auto& [name, value] : response.headers) {
    absl::StrAppend(&head, name, ": ", value, "\r\n");
  }
  for (const auto& [name, value] : extra_headers) {
    absl::StrAppend(&head, name, ": ", value, "\r\n");
  }
  head += "\r\n";
  mg_write(connection, head.data(), head.size());
  mg_write(connection, response.body.data(), response.body.size());
}

class CivetwebStream : public HttpStream {
 public:
  explicit CivetwebStream(struct mg_connection* connection) : connection_(connection) {}
  bool Write(absl::string_view data) override {
    return mg_write(connection_, data.data(), data.size()) > 0;
  }

 private:
  struct mg_connection* connection_;
};

int HandleRequest(struct mg_connection* connection, void* server) {
  return static_cast<HttpServer*>(server)->Dispatch(connection);
}

// civetweb reports bind failures only through its log; keep the last one
// of start-up so the error can say why.
std::mutex start_log_mutex;
std::string* start_log = nullptr;

int LogMessage(const struct mg_connection*, const char* message) {
  std::lock_guard<std::mutex> lock(start_log_mutex);
  // The first message names the cause; later ones only say start-up failed.
  if (start_log && start_log->empty()) *start_log = message;
  return 1;  // handled: keep civetweb from printing to stderr
}

}  // namespace

absl::StatusOr<std::string> ToCivetwebListen(absl::string_view listen_address) {
  const size_t colon = listen_address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", listen_address,
                     "\" has no port: use HOST:PORT or :PORT, e.g. :19100 or 127.0.0.1:19100"));
  }
  absl::string_view host = listen_address.substr(0, colon);
  absl::string_view port_text = listen_address.substr(colon + 1);
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535 || port_text.empty() ||
      !absl::ascii_isdigit(port_text[0])) {
    return absl::InvalidArgumentError(absl::StrCat("listen address \"", listen_address,
                                                   "\" has a bad port \"", port_text,
                                                   "\": use a number from 0 to 65535"));
  }
  if (host.empty() || host == "0.0.0.0") return absl::StrCat(port);
  if (host == "localhost") host = "127.0.0.1";
  if (absl::StartsWith(host, "[")) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", listen_address,
                     "\" is IPv6, which this build's civetweb does not support: listen on "
                     "an IPv4 address such as :PORT or 127.0.0.1:PORT"));
  }
  in_addr v4{};
  const std::string host_string(host);
  if (inet_pton(AF_INET, host_string.c_str(), &v4) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", listen_address,
                     "\" must name an IPv4 address (or localhost), e.g. 127.0.0.1:19100"));
  }
  return absl::StrCat(host_string, ":", port);
}

std::string BrowserUrl(absl::string_view listen_address, int port) {
  std::string host = "localhost";
  if (absl::StatusOr<std::string> listen = ToCivetwebListen(listen_address); listen.ok()) {
    if (const size_t colon = listen->rfind(':'); colon != std::string::npos) {
      host = listen->substr(0, colon);
    }
  }
  return absl::StrCat("http://", host, ":", port, "/");
}

absl::Status CheckCanListen(absl::string_view listen_address) {
  absl::StatusOr<std::string> listen = ToCivetwebListen(listen_address);
  if (!listen.ok()) return listen.status();
  sockaddr_in address{};
  address.sin_family = AF_INET;
  const size_t colon = listen->rfind(':');
  int port = 0;
  if (colon == std::string::npos) {
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    (void)absl::SimpleAtoi(*listen, &port);
  } else {
    inet_pton(AF_INET, listen->substr(0, colon).c_str(), &address.sin_addr);
    (void)absl::SimpleAtoi(listen->substr(colon + 1), &port);
  }
  address.sin_port = htons(static_cast<uint16_t>(port));
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket()");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const int result = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  const int error = errno;
  close(fd);
  if (result == 0) return absl::OkStatus();
  if (error == EADDRINUSE) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen_address,
                     ": the address is already in use; stop the other process or choose another "
                     "--web.listen-address"));
  }
  if (error == EADDRNOTAVAIL) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen_address,
                     ": no interface of this host has that address; use :PORT or 127.0.0.1:PORT"));
  }
  return absl::UnavailableError(
      absl::StrCat("cannot listen on ", listen_address, ": ", strerror(error)));
}

HttpServer::HttpServer(const Options& options, std::vector<HttpRoute> routes) : options_(options) {
  for (HttpRoute& route : routes) {
    std::string path = route.path;
    routes_.emplace(std::move(path), std::move(route));
  }
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const Options& options,
                                                              std::vector<HttpRoute> routes) {
  absl::StatusOr<std::string> listen = ToCivetwebListen(options.listen_address);
  if (!listen.ok()) return listen.status();

  std::unique_ptr<HttpServer> server(new HttpServer(options, std::move(routes)));
  const std::string threads = absl::StrCat(options.threads);
  const std::string timeout = absl::StrCat(absl::ToInt64Milliseconds(options.request_timeout));
  const std::string keep_alive =
      absl::StrCat(absl::ToInt64Milliseconds(options.keep_alive_timeout));
  const std::string max_header = absl::StrCat(options.max_header_bytes);
  const char* config[] = {"listening_ports", listen->c_str(), "num_threads", threads.c_str(),
                          "request_timeout_ms", timeout.c_str(), "enable_keep_alive", "yes",
                          // Head and body go out in two writes; without this
                          // a keep-alive reply's body waits for the client's
                          // delayed ACK (about 40 ms).
                          "tcp_nodelay", "1", "keep_alive_timeout_ms", keep_alive.c_str(),
                          "max_request_size", max_header.c_str(), nullptr};
  struct mg_callbacks callbacks;
  memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = LogMessage;

  std::string failure;
  {
    std::lock_guard<std::mutex> lock(start_log_mutex);
    start_log = &failure;
  }
  server->context_ = mg_start(&callbacks, server.get(), config);
  {
    std::lock_guard<std::mutex> lock(start_log_mutex);
    start_log = nullptr;
  }
  if (server->context_ == nullptr) {
    std::string hint = absl::StrContains(failure, "98") || absl::StrContains(failure, "in use")
                           ? ": the address is already in use; stop the other "
                             "process or choose another --web.listen-address"
                           : "";
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen_address, hint,
                                               failure.empty() ? "" : " (", failure,
                                               failure.empty() ? "" : ")"));
  }
  mg_set_request_handler(server->context_, "/", HandleRequest, server.get());

  struct mg_server_port ports[4];
  memset(ports, 0, sizeof(ports));
  if (mg_get_server_ports(server->context_, 4, ports) > 0) server->port_ = ports[0].port;
  return server;
}

HttpServer::~HttpServer() {
  if (context_) mg_stop(context_);
}

int HttpServer::Dispatch(struct mg_connection* connection) {
  const struct mg_request_info* info = mg_get_request_info(connection);
  HttpRequest request;
  request.method = info->request_method ? info->request_method : "";
  request.path = info->local_uri ? info->local_uri : "";
  request.query = info->query_string ? info->query_string : "";
  request.remote_address = info->remote_addr;
  request.from_loopback = IsLoopback(info->remote_addr);
  // civetweb keeps the first MG_MAX_HEADERS headers and drops the rest
  // unread, Content-Length or Authorization among them: refuse instead.
  if (info->num_headers >= MG_MAX_HEADERS) {
    SendResponse(connection,
                 {431,
                  "text/plain; charset=utf-8",
                  absl::StrFormat("more than %d header fields\n", MG_MAX_HEADERS - 1),
                  {}},
                 options_.response_headers);
    return 431;
  }
  for (int i = 0; i < info->num_headers; ++i) {
    request.headers[absl::AsciiStrToLower(info->http_headers[i].name)] =
        info->http_headers[i].value;
  }

  // Before routing and before reading a body: without credentials nothing
  // is read, and not even which paths exist is revealed.
  if (options_.authorize && !options_.open_paths.contains(request.path) &&
      !options_.authorize(request)) {
    SendResponse(connection,
                 {401,
                  "text/plain; charset=utf-8",
                  "401 Unauthorized\n",
                  {{"WWW-Authenticate", absl::StrCat("Basic realm=\"", options_.realm, "\"")}}},
                 options_.response_headers);
    return 401;
  }
  auto route = routes_.find(request.path);
  if (route == routes_.end()) {
    SendResponse(
        connection,
        {404, "text/plain; charset=utf-8", absl::StrCat("no such page: ", request.path, "\n"), {}},
        options_.response_headers);
    return 404;
  }
  if (info->content_length > static_cast<long long>(options_.max_body_bytes)) {
    SendResponse(connection,
                 {413,
                  "text/plain; charset=utf-8",
                  absl::StrFormat("request body over %d bytes\n", options_.max_body_bytes),
                  {}},
                 options_.response_headers);
    return 413;
  }
  if (info->content_length > 0) {
    request.body.resize(info->content_length);
    size_t got = 0;
    while (got < request.body.size()) {
      int n = mg_read(connection, &request.body[got], request.body.size() - got);
      if (n <= 0) break;
      got += n;
    }
    request.body.resize(got);
  }

  if (route->second.stream) {
    std::string head =
        absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: ", route->second.stream_content_type,
                     "\r\nCache-Control: no-store\r\nConnection: close\r\n"
                     "X-Content-Type-Options: nosniff\r\n");
    for (const auto& [name, value] : options_.response_headers) {
      absl::StrAppend(&head, name, ": ", value, "\r\n");
    }
    head += "\r\n";
    mg_write(connection, head.data(), head.size());
    CivetwebStream stream(connection);
    route->second.stream(request, stream);
    return 200;
  }
  HttpResponse response = route->second.handler(request);
  SendResponse(connection, response, options_.response_headers);
  return response.status;
}

}  // namespace geoip
