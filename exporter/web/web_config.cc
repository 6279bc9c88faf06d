#include "exporter/web/web_config.h"

#include <errno.h>

#include <cstdio>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "exporter/web/basic_auth.h"

namespace geoip {
namespace {

// A config file is a few lines; anything larger is the wrong file.
constexpr size_t kMaxFileBytes = 64 * 1024;

constexpr char kTlsUnsupported[] =
    "tls_server_config is not supported: Debian's civetweb 1.15 crashes serving "
    "HTTPS with OpenSSL 3. Listen on 127.0.0.1 and terminate TLS in front of the "
    "exporter with the shipped proxy configuration (deploy/tls/stunnel.conf or "
    "deploy/tls/nginx.conf), and leave tls_server_config out or empty";

// The headers exporter-toolkit lets http_server_config set.
constexpr absl::string_view kAllowedHeaders[] = {
    "Content-Security-Policy", "Strict-Transport-Security", "X-Content-Type-Options",
    "X-Frame-Options", "X-XSS-Protection"};

// One "key: value" line and the lines nested under it.
struct Node {
  int line = 0;
  std::string key;
  // A scalar written after the colon; nullopt if nothing (or only "{}") was,
  // so that the key is a mapping, possibly empty.
  std::optional<std::string> value;
  std::vector<Node> children;
};

absl::Status LineError(int line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", message));
}

bool IsIndicator(char c) {
  return absl::string_view("-?[]{},&*!|>%@`'\"#").find(c) != absl::string_view::npos;
}

// After a value: spaces, then nothing or a comment.
bool OnlyCommentLeft(absl::string_view rest) {
  rest = absl::StripLeadingAsciiWhitespace(rest);
  return rest.empty() || rest[0] == '#';
}

// Parses a quoted scalar at the start of text; *consumed covers the quotes.
// Single quotes escape a quote by doubling it; double quotes know \" and \\.
absl::StatusOr<std::string> ParseQuoted(absl::string_view text, size_t* consumed, int line) {
  const char quote = text[0];
  std::string out;
  for (size_t i = 1; i < text.size(); ++i) {
    const char c = text[i];
    if (quote == '\'' && c == '\'') {
      if (i + 1 < text.size() && text[i + 1] == '\'') {
        out += '\'';
        ++i;
        continue;
      }
      *consumed = i + 1;
      return out;
    }
    if (quote == '"' && c == '"') {
      *consumed = i + 1;
      return out;
    }
    if (quote == '"' && c == '\\') {
      if (i + 1 < text.size() && (text[i + 1] == '"' || text[i + 1] == '\\')) {
        out += text[++i];
        continue;
      }
      return LineError(line, "unsupported escape in a double-quoted string (only \\\" and \\\\)");
    }
    out += c;
  }
  return LineError(line, "quoted string is not closed on this line");
}

// Parses the text after "key:" into node->value.
absl::Status ParseValue(absl::string_view rest, int line, Node* node) {
  if (!rest.empty() && rest[0] != ' ') {
    return LineError(line, "expected a space after the colon");
  }
  rest = absl::StripLeadingAsciiWhitespace(rest);
  if (rest.empty() || rest[0] == '#') return absl::OkStatus();
  if (absl::StartsWith(rest, "{}")) {
    if (!OnlyCommentLeft(rest.substr(2))) return LineError(line, "unexpected text after {}");
    return absl::OkStatus();
  }
  if (rest[0] == '"' || rest[0] == '\'') {
    size_t consumed = 0;
    absl::StatusOr<std::string> value = ParseQuoted(rest, &consumed, line);
    if (!value.ok()) return value.status();
    if (!OnlyCommentLeft(rest.substr(consumed))) {
      return LineError(line, "unexpected text after the closing quote");
    }
    node->value = *std::move(value);
    return absl::OkStatus();
  }
  if (IsIndicator(rest[0])) {
    return LineError(line, absl::StrCat("unsupported YAML (value starts with '", rest.substr(0, 1),
                                        "'): use a plain or quoted string"));
  }
  // A plain scalar ends at a comment (" #") or the end of the line.
  if (size_t hash = rest.find(" #"); hash != absl::string_view::npos) rest = rest.substr(0, hash);
  rest = absl::StripTrailingAsciiWhitespace(rest);
  if (absl::StrContains(rest, ": ") || absl::EndsWith(rest, ":")) {
    return LineError(line, "a value may not contain \": \"; quote it");
  }
  node->value = std::string(rest);
  return absl::OkStatus();
}

// Parses one non-blank, non-comment line (indentation removed).
absl::StatusOr<Node> ParseLine(absl::string_view text, int line) {
  Node node;
  node.line = line;
  size_t colon = 0;
  if (text[0] == '"' || text[0] == '\'') {
    size_t consumed = 0;
    absl::StatusOr<std::string> key = ParseQuoted(text, &consumed, line);
    if (!key.ok()) return key.status();
    node.key = *std::move(key);
    colon = consumed;
    if (colon >= text.size() || text[colon] != ':') {
      return LineError(line, "expected a colon after the quoted key");
    }
  } else {
    if (absl::StartsWith(text, "- ") || text == "-") {
      return LineError(line, "lists are not supported here");
    }
    if (IsIndicator(text[0])) {
      return LineError(
          line, absl::StrCat("unsupported YAML (line starts with '", text.substr(0, 1), "')"));
    }
    // The key ends at the first colon followed by a space or the line's end.
    colon = absl::string_view::npos;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == ':' && (i + 1 == text.size() || text[i + 1] == ' ')) {
        colon = i;
        break;
      }
    }
    if (colon == absl::string_view::npos) {
      return LineError(line, "expected \"key: value\" or \"key:\"");
    }
    node.key = std::string(absl::StripTrailingAsciiWhitespace(text.substr(0, colon)));
  }
  if (absl::Status value = ParseValue(text.substr(colon + 1), line, &node); !value.ok()) {
    return value;
  }
  return node;
}

// Builds the tree of keys from the text: nesting follows indentation, as in
// YAML block mappings.
absl::StatusOr<std::vector<Node>> ParseTree(absl::string_view text) {
  std::vector<Node> root;
  // The open mappings, outermost first: their indentation and their
  // children. Only the innermost one is appended to, so the pointers to
  // the outer ones stay valid.
  struct Level {
    size_t indent;
    std::vector<Node>* nodes;
  };
  std::vector<Level> levels = {{0, &root}};
  Node* last = nullptr;
  bool content_seen = false;
  int line = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line;
    absl::ConsumeSuffix(&raw, "\r");
    if (raw.find('\t') != absl::string_view::npos) {
      return LineError(line, "tab character: YAML indents with spaces only");
    }
    for (char c : raw) {
      if (static_cast<unsigned char>(c) < 0x20) return LineError(line, "control character");
    }
    const size_t indent = raw.find_first_not_of(' ');
    if (indent == absl::string_view::npos || raw[indent] == '#') continue;
    absl::string_view content = raw.substr(indent);
    if (!content_seen && indent == 0 && absl::StripTrailingAsciiWhitespace(content) == "---") {
      content_seen = true;
      continue;
    }
    content_seen = true;
    absl::StatusOr<Node> node = ParseLine(content, line);
    if (!node.ok()) return node.status();

    if (last != nullptr && !last->value.has_value() && indent > levels.back().indent) {
      levels.push_back({indent, &last->children});
    } else {
      const size_t depth = levels.size();
      while (levels.size() > 1 && indent < levels.back().indent) levels.pop_back();
      if (indent != levels.back().indent) {
        if (levels.size() != depth) {
          return LineError(line, "indentation does not line up with an enclosing key");
        }
        return LineError(line, last == nullptr
                                   ? "the first key must not be indented"
                                   : "unexpected indentation: the key above has a value, so "
                                     "nothing can be nested under it");
      }
    }
    for (const Node& sibling : *levels.back().nodes) {
      if (sibling.key == node->key) {
        return LineError(line, absl::StrCat("duplicate key \"", node->key, "\" (first on line ",
                                            sibling.line, ")"));
      }
    }
    levels.back().nodes->push_back(*std::move(node));
    last = &levels.back().nodes->back();
  }
  return root;
}

absl::Status ParseUsers(const Node& node, WebConfig* config) {
  if (node.value.has_value()) {
    return LineError(node.line,
                     "basic_auth_users must be a mapping of user names to bcrypt hashes");
  }
  for (const Node& user : node.children) {
    if (!user.children.empty() || !user.value.has_value()) {
      return LineError(user.line,
                       absl::StrCat("user \"", user.key, "\" needs a bcrypt hash as its value"));
    }
    if (user.key.empty() || absl::StrContains(user.key, ':')) {
      return LineError(user.line, "a user name must be non-empty and contain no colon");
    }
    if (!IsBcryptHash(*user.value)) {
      return LineError(user.line,
                       absl::StrCat("the password of user \"", user.key,
                                    "\" is not a bcrypt hash ($2y$10$ followed by 53 characters); "
                                    "make one with: mkpasswd -m bcrypt -R 10 (package whois)"));
    }
    config->basic_auth_users[user.key] = *user.value;
  }
  return absl::OkStatus();
}

absl::Status ParseHeaders(const Node& node, WebConfig* config) {
  if (node.value.has_value()) {
    return LineError(node.line, "headers must be a mapping of header names to values");
  }
  for (const Node& header : node.children) {
    bool allowed = false;
    for (absl::string_view name : kAllowedHeaders) allowed = allowed || header.key == name;
    if (!allowed) {
      return LineError(header.line,
                       absl::StrCat("header \"", header.key,
                                    "\" cannot be set; these can: Content-Security-Policy, "
                                    "Strict-Transport-Security, X-Content-Type-Options, "
                                    "X-Frame-Options, X-XSS-Protection"));
    }
    if (!header.children.empty() || !header.value.has_value() || header.value->empty()) {
      return LineError(header.line, absl::StrCat("header \"", header.key, "\" needs a value"));
    }
    const std::string& value = *header.value;
    if (header.key == "X-Content-Type-Options") {
      // Every response already says nosniff; nothing else is valid.
      if (value != "nosniff")
        return LineError(header.line, "X-Content-Type-Options must be nosniff");
      continue;
    }
    if (header.key == "X-Frame-Options" && !absl::EqualsIgnoreCase(value, "deny") &&
        !absl::EqualsIgnoreCase(value, "sameorigin")) {
      return LineError(header.line, "X-Frame-Options must be deny or sameorigin");
    }
    config->headers.emplace_back(header.key, value);
  }
  return absl::OkStatus();
}

absl::Status ParseHttpServerConfig(const Node& node, WebConfig* config) {
  if (node.value.has_value()) {
    return LineError(node.line, "http_server_config must be a mapping");
  }
  for (const Node& child : node.children) {
    if (child.key == "headers") {
      if (absl::Status headers = ParseHeaders(child, config); !headers.ok()) return headers;
    } else if (child.key == "http2") {
      // HTTP/2 needs TLS, which the proxy in front terminates; accepted so
      // that exporter-toolkit files carry over, and without effect here.
      if (!child.children.empty() || (child.value != "true" && child.value != "false")) {
        return LineError(child.line, "http2 must be true or false");
      }
    } else {
      return LineError(child.line, absl::StrCat("unknown key \"", child.key,
                                                "\" in http_server_config (supported: headers, "
                                                "http2)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsBcryptHash(absl::string_view text) {
  if (text.size() != 60 || text[0] != '$' || text[1] != '2' || text[3] != '$' || text[6] != '$') {
    return false;
  }
  if (text[2] != 'a' && text[2] != 'b' && text[2] != 'y') return false;
  if (!absl::ascii_isdigit(text[4]) || !absl::ascii_isdigit(text[5])) return false;
  const int cost = (text[4] - '0') * 10 + (text[5] - '0');
  if (cost < 4 || cost > 31) return false;
  for (char c : text.substr(7)) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '/') return false;
  }
  return true;
}

absl::StatusOr<WebConfig> ParseWebConfig(absl::string_view text) {
  absl::StatusOr<std::vector<Node>> tree = ParseTree(text);
  if (!tree.ok()) return tree.status();
  WebConfig config;
  for (const Node& node : *tree) {
    absl::Status status;
    if (node.key == "basic_auth_users") {
      status = ParseUsers(node, &config);
    } else if (node.key == "http_server_config") {
      status = ParseHttpServerConfig(node, &config);
    } else if (node.key == "tls_server_config") {
      if (node.value.has_value() || !node.children.empty()) {
        status = LineError(node.line, kTlsUnsupported);
      }
    } else {
      status = LineError(node.line, absl::StrCat("unknown key \"", node.key,
                                                 "\" (supported: basic_auth_users, "
                                                 "http_server_config, tls_server_config)"));
    }
    if (!status.ok()) return status;
  }
  return config;
}

absl::StatusOr<WebConfig> LoadWebConfig(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(fopen(path.c_str(), "re"), fclose);
  if (!file) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot read web config file ", path));
  }
  std::string text(kMaxFileBytes + 1, '\0');
  text.resize(fread(text.data(), 1, text.size(), file.get()));
  if (ferror(file.get())) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot read web config file ", path));
  }
  if (text.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("web config file ", path, " is over 64 KiB: not a web config file"));
  }
  absl::StatusOr<WebConfig> config = ParseWebConfig(text);
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("web config file ", path, ": ", config.status().message()));
  }
  return config;
}

void ApplyWebConfig(const WebConfig& config, HttpServer::Options* options) {
  options->response_headers = config.headers;
  if (config.basic_auth_users.empty()) return;
  auto authenticator = std::make_shared<BasicAuthenticator>(config.basic_auth_users);
  options->authorize = [authenticator](const HttpRequest& request) {
    auto header = request.headers.find("authorization");
    return header != request.headers.end() && authenticator->Authorize(header->second);
  };
}

}  // namespace geoip
