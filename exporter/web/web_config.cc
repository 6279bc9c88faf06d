#include "exporter/web/web_config.h"

#include <errno.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "exporter/web/basic_auth.h"

namespace geoip {
namespace {

// A config file is a few lines; anything larger is the wrong file.
constexpr size_t kMaxFileBytes = 64 * 1024;

// The headers exporter-toolkit lets http_server_config set.
constexpr absl::string_view kAllowedHeaders[] = {
    "Content-Security-Policy", "Strict-Transport-Security", "X-Content-Type-Options",
    "X-Frame-Options", "X-XSS-Protection"};

constexpr struct {
  absl::string_view name;
  ClientAuthType type;
} kClientAuthTypes[] = {
    {"NoClientCert", ClientAuthType::kNoClientCert},
    {"RequestClientCert", ClientAuthType::kRequestClientCert},
    {"RequireAnyClientCert", ClientAuthType::kRequireAnyClientCert},
    // exporter-toolkit's older name for RequireAnyClientCert, still accepted there.
    {"RequireClientCert", ClientAuthType::kRequireAnyClientCert},
    {"VerifyClientCertIfGiven", ClientAuthType::kVerifyClientCertIfGiven},
    {"RequireAndVerifyClientCert", ClientAuthType::kRequireAndVerifyClientCert},
};

constexpr struct {
  absl::string_view name;
  TlsVersion version;
} kTlsVersions[] = {{"TLS10", TlsVersion::kTls10},
                    {"TLS11", TlsVersion::kTls11},
                    {"TLS12", TlsVersion::kTls12},
                    {"TLS13", TlsVersion::kTls13}};

// The curves exporter-toolkit knows, by Go's names.
constexpr absl::string_view kCurves[] = {"CurveP256", "CurveP384", "CurveP521", "X25519"};

absl::Status LineError(int line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", message));
}

// 1-based line of a node; 1 for a node without a position (the empty
// document), so that every error still names a line.
int LineOf(const YAML::Mark& mark) { return mark.is_null() ? 1 : mark.line + 1; }

// Text from the file, quoted for a one-line error message.
std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

absl::string_view TypeName(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "empty";
  return "a string";
}

// One "key: value" of a mapping, with the line of its key.
struct Entry {
  std::string key;
  int line = 0;
  YAML::Node value;
};

// The entries of node, which must be a mapping (or empty: no entries) whose
// keys are strings, each written once. what names node in errors.
absl::StatusOr<std::vector<Entry>> EntriesOf(const YAML::Node& node, int line,
                                             absl::string_view what) {
  std::vector<Entry> entries;
  if (node.IsNull()) return entries;
  if (!node.IsMap()) {
    return LineError(
        line, absl::StrCat(what, " must be a mapping (key: value lines), not ", TypeName(node)));
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    const int key_line = LineOf(it->first.Mark());
    if (!it->first.IsScalar()) {
      return LineError(key_line, absl::StrCat("the keys of ", what, " must be strings, not ",
                                              TypeName(it->first)));
    }
    Entry entry{it->first.Scalar(), key_line, it->second};
    // yaml-cpp keeps every duplicate key, in order: a second one is found here.
    for (const Entry& seen : entries) {
      if (seen.key == entry.key) {
        return LineError(key_line, absl::StrCat("duplicate key ", Quote(entry.key), " in ", what,
                                                " (first on line ", seen.line, ")"));
      }
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

// Checks text for control characters, after dropping the line breaks a block
// scalar (| or >) ends with.
absl::StatusOr<std::string> CleanText(std::string text, int line, absl::string_view what) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return LineError(line, absl::StrCat(what, " contains a control character (a line break or ",
                                          "an escape such as \\n): write it on one line"));
    }
  }
  return text;
}

// The string value of entry: "" when empty (key:), an error for a mapping or a
// list.
absl::StatusOr<std::string> StringOf(const Entry& entry, absl::string_view what) {
  if (entry.value.IsNull()) return std::string();
  if (!entry.value.IsScalar()) {
    return LineError(entry.line,
                     absl::StrCat(what, " must be a string, not ", TypeName(entry.value)));
  }
  return CleanText(entry.value.Scalar(), entry.line, what);
}

// The strings of a list ([A, B] or "- A" lines); empty when the value is.
absl::StatusOr<std::vector<std::pair<int, std::string>>> StringsOf(const Entry& entry,
                                                                   absl::string_view what) {
  std::vector<std::pair<int, std::string>> strings;
  if (entry.value.IsNull()) return strings;
  if (!entry.value.IsSequence()) {
    return LineError(entry.line, absl::StrCat(what, " must be a list of strings, e.g. [A, B], not ",
                                              TypeName(entry.value)));
  }
  for (const YAML::Node& item : entry.value) {
    const int line = LineOf(item.Mark());
    if (!item.IsScalar() || item.Scalar().empty()) {
      return LineError(line,
                       absl::StrCat("each entry of ", what, " must be a non-empty string, not ",
                                    item.IsScalar() ? "empty" : TypeName(item)));
    }
    absl::StatusOr<std::string> text = CleanText(item.Scalar(), line, what);
    if (!text.ok()) return text.status();
    strings.emplace_back(line, *std::move(text));
  }
  return strings;
}

// A plain true or false (as YAML 1.2 writes them); a quoted "true" is a
// string, as in exporter-toolkit's Go YAML.
absl::StatusOr<bool> BoolOf(const Entry& entry, absl::string_view what) {
  const absl::Status wrong = LineError(entry.line, absl::StrCat(what, " must be true or false"));
  if (!entry.value.IsScalar() ||
      (entry.value.Tag() != "?" && entry.value.Tag() != "tag:yaml.org,2002:bool")) {
    return wrong;
  }
  const std::string& text = entry.value.Scalar();
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return wrong;
}

absl::Status ParseUsers(const Entry& section, WebConfig* config) {
  absl::StatusOr<std::vector<Entry>> users =
      EntriesOf(section.value, section.line, "basic_auth_users");
  if (!users.ok()) return users.status();
  for (const Entry& user : *users) {
    if (user.key.empty() || absl::StrContains(user.key, ':')) {
      return LineError(user.line, "a user name must be non-empty and contain no colon");
    }
    if (absl::Status clean = CleanText(user.key, user.line, "a user name").status(); !clean.ok()) {
      return clean;
    }
    if (!user.value.IsScalar() || user.value.Scalar().empty()) {
      return LineError(user.line,
                       absl::StrCat("user ", Quote(user.key), " needs a bcrypt hash as its value"));
    }
    if (!IsBcryptHash(user.value.Scalar())) {
      return LineError(user.line,
                       absl::StrCat("the password of user ", Quote(user.key),
                                    " is not a bcrypt hash ($2y$10$ followed by 53 characters); "
                                    "make one with: mkpasswd -m bcrypt -R 10 (package whois)"));
    }
    config->basic_auth_users[user.key] = user.value.Scalar();
  }
  return absl::OkStatus();
}

absl::Status ParseHeaders(const Entry& section, WebConfig* config) {
  absl::StatusOr<std::vector<Entry>> headers = EntriesOf(section.value, section.line, "headers");
  if (!headers.ok()) return headers.status();
  for (const Entry& header : *headers) {
    bool allowed = false;
    for (absl::string_view name : kAllowedHeaders) allowed = allowed || header.key == name;
    if (!allowed) {
      return LineError(header.line,
                       absl::StrCat("header ", Quote(header.key),
                                    " cannot be set; these can: Content-Security-Policy, "
                                    "Strict-Transport-Security, X-Content-Type-Options, "
                                    "X-Frame-Options, X-XSS-Protection"));
    }
    absl::StatusOr<std::string> value =
        StringOf(header, absl::StrCat("header ", Quote(header.key)));
    if (!value.ok()) return value.status();
    if (value->empty()) {
      return LineError(header.line, absl::StrCat("header ", Quote(header.key), " needs a value"));
    }
    if (header.key == "X-Content-Type-Options") {
      // Every response already says nosniff; nothing else is valid.
      if (*value != "nosniff") {
        return LineError(header.line, "X-Content-Type-Options must be nosniff");
      }
      continue;
    }
    if (header.key == "X-Frame-Options" && !absl::EqualsIgnoreCase(*value, "deny") &&
        !absl::EqualsIgnoreCase(*value, "sameorigin")) {
      return LineError(header.line, "X-Frame-Options must be deny or sameorigin");
    }
    config->headers.emplace_back(header.key, *std::move(value));
  }
  return absl::OkStatus();
}

absl::Status ParseHttpServerConfig(const Entry& section, WebConfig* config) {
  absl::StatusOr<std::vector<Entry>> entries =
      EntriesOf(section.value, section.line, "http_server_config");
  if (!entries.ok()) return entries.status();
  for (const Entry& entry : *entries) {
    if (entry.key == "headers") {
      if (absl::Status headers = ParseHeaders(entry, config); !headers.ok()) return headers;
    } else if (entry.key == "http2") {
      // Read for exporter-toolkit files to carry over; the server speaks
      // HTTP/1.1 only, so it has no effect.
      absl::StatusOr<bool> http2 = BoolOf(entry, "http2");
      if (!http2.ok()) return http2.status();
      config->http2 = *http2;
    } else {
      return LineError(entry.line, absl::StrCat("unknown key ", Quote(entry.key),
                                                " in http_server_config (supported: headers, "
                                                "http2)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TlsVersion> TlsVersionOf(const Entry& entry) {
  absl::StatusOr<std::string> name = StringOf(entry, entry.key);
  if (!name.ok()) return name.status();
  for (const auto& known : kTlsVersions) {
    if (*name == known.name) return known.version;
  }
  return LineError(entry.line, absl::StrCat("unknown ", entry.key, " ", Quote(*name),
                                            ": use one of TLS10, TLS11, TLS12, TLS13"));
}

absl::string_view TlsVersionName(TlsVersion version) {
  for (const auto& known : kTlsVersions) {
    if (known.version == version) return known.name;
  }
  return "?";
}

// tls_server_config, checked as exporter-toolkit checks it. Leaves
// config->tls unset when the section sets nothing (plain HTTP).
absl::Status ParseTlsServerConfig(const Entry& section, WebConfig* config) {
  absl::StatusOr<std::vector<Entry>> entries =
      EntriesOf(section.value, section.line, "tls_server_config");
  if (!entries.ok()) return entries.status();
  TlsServerConfig tls;
  // The first key that sets something, and the lines of those the checks
  // below name (0: not written).
  const Entry* first_set = nullptr;
  int cert_line = 0, key_line = 0, client_auth_line = 0, client_ca_line = 0, sans_line = 0,
      min_line = 0, max_line = 0;
  for (const Entry& entry : *entries) {
    const absl::string_view key = entry.key;
    bool set = !entry.value.IsNull();
    if (key == "cert_file" || key == "key_file" || key == "client_ca_file" ||
        key == "client_auth_type") {
      absl::StatusOr<std::string> text = StringOf(entry, key);
      if (!text.ok()) return text.status();
      // As in exporter-toolkit, an empty string is the same as leaving it out.
      set = !text->empty();
      if (key == "cert_file") {
        tls.cert_file = *text;
        if (set) cert_line = entry.line;
      } else if (key == "key_file") {
        tls.key_file = *text;
        if (set) key_line = entry.line;
      } else if (key == "client_ca_file") {
        tls.client_ca_file = *text;
        if (set) client_ca_line = entry.line;
      } else if (set) {
        bool known = false;
        for (const auto& type : kClientAuthTypes) {
          if (*text == type.name) {
            tls.client_auth_type = type.type;
            known = true;
          }
        }
        if (!known) {
          return LineError(entry.line,
                           absl::StrCat("unknown client_auth_type ", Quote(*text),
                                        ": use one of NoClientCert, RequestClientCert, "
                                        "RequireAnyClientCert, VerifyClientCertIfGiven, "
                                        "RequireAndVerifyClientCert"));
        }
        client_auth_line = entry.line;
      }
    } else if (key == "client_allowed_sans" || key == "cipher_suites" ||
               key == "curve_preferences") {
      absl::StatusOr<std::vector<std::pair<int, std::string>>> strings = StringsOf(entry, key);
      if (!strings.ok()) return strings.status();
      set = !strings->empty();
      std::vector<std::string>* out = key == "client_allowed_sans" ? &tls.client_allowed_sans
                                      : key == "cipher_suites"     ? &tls.cipher_suites
                                                                   : &tls.curve_preferences;
      for (auto& [line, text] : *strings) {
        if (key == "curve_preferences") {
          bool known = false;
          for (absl::string_view curve : kCurves) known = known || text == curve;
          if (!known) {
            return LineError(line, absl::StrCat("unknown curve ", Quote(text),
                                                " in curve_preferences: use CurveP256, "
                                                "CurveP384, CurveP521 or X25519"));
          }
        }
        out->push_back(std::move(text));
      }
      if (key == "client_allowed_sans" && set) sans_line = entry.line;
    } else if (key == "min_version" || key == "max_version") {
      if (set) {
        absl::StatusOr<TlsVersion> version = TlsVersionOf(entry);
        if (!version.ok()) return version.status();
        (key == "min_version" ? tls.min_version : tls.max_version) = *version;
        (key == "min_version" ? min_line : max_line) = entry.line;
      }
    } else if (key == "prefer_server_cipher_suites") {
      if (set) {
        absl::StatusOr<bool> prefer = BoolOf(entry, key);
        if (!prefer.ok()) return prefer.status();
        tls.prefer_server_cipher_suites = *prefer;
      }
    } else if (key == "cert" || key == "key" || key == "client_ca") {
      return LineError(entry.line, absl::StrCat("tls_server_config.", key,
                                                " (PEM written inline) is not "
                                                "supported: put it in a file and use ",
                                                key, "_file"));
    } else {
      return LineError(entry.line,
                       absl::StrCat("unknown key ", Quote(key),
                                    " in tls_server_config (supported: cert_file, key_file, "
                                    "client_auth_type, client_ca_file, client_allowed_sans, "
                                    "cipher_suites, curve_preferences, min_version, max_version, "
                                    "prefer_server_cipher_suites)"));
    }
    if (set && first_set == nullptr) first_set = &entry;
  }

  if (first_set == nullptr) return absl::OkStatus();  // empty: plain HTTP
  if (cert_line == 0 && key_line == 0) {
    return LineError(first_set->line,
                     absl::StrCat("missing cert_file: tls_server_config sets ", first_set->key,
                                  ", which needs cert_file and key_file; add them to serve "
                                  "HTTPS, or remove tls_server_config for plain HTTP"));
  }
  if (key_line == 0) {
    return LineError(cert_line,
                     "missing key_file: cert_file needs key_file, the file with the "
                     "certificate's private key (PEM)");
  }
  if (cert_line == 0) {
    return LineError(key_line,
                     "missing cert_file: key_file needs cert_file, the file with the "
                     "server's certificate (PEM)");
  }
  if (client_ca_line != 0 && tls.client_auth_type == ClientAuthType::kNoClientCert) {
    return LineError(client_ca_line,
                     "client_ca_file is set, but client_auth_type is NoClientCert (the default), "
                     "so no client certificate is asked for: set client_auth_type: "
                     "RequireAndVerifyClientCert, or remove client_ca_file");
  }
  if (client_ca_line == 0 &&
      (tls.client_auth_type == ClientAuthType::kVerifyClientCertIfGiven ||
       tls.client_auth_type == ClientAuthType::kRequireAndVerifyClientCert)) {
    return LineError(client_auth_line,
                     "this client_auth_type verifies client certificates and needs "
                     "client_ca_file, the file of the certificate authorities that sign them "
                     "(PEM): add it");
  }
  if (sans_line != 0 && tls.client_auth_type != ClientAuthType::kRequireAnyClientCert &&
      tls.client_auth_type != ClientAuthType::kRequireAndVerifyClientCert) {
    return LineError(sans_line,
                     "client_allowed_sans needs a client certificate on every connection: set "
                     "client_auth_type to RequireAndVerifyClientCert (or RequireAnyClientCert)");
  }
  if (tls.min_version > tls.max_version) {
    return LineError(
        min_line != 0 ? min_line : max_line,
        absl::StrCat("min_version ", TlsVersionName(tls.min_version),
                     min_line != 0 ? "" : " (the default)", " is above max_version ",
                     TlsVersionName(tls.max_version), max_line != 0 ? "" : " (the default)",
                     ": lower min_version or raise max_version"));
  }
  config->tls = std::move(tls);
  return absl::OkStatus();
}

// The YAML spec allows no C0 control character but tab and line breaks in a
// file, and yaml-cpp would drop some silently (and stop reading at a NUL).
absl::Status CheckCharacters(absl::string_view text) {
  int line = 1;
  for (char c : text) {
    if (c == '\n') {
      ++line;
    } else if ((static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
      return LineError(line, "control character: a web config file is text");
    }
  }
  return absl::OkStatus();
}

// The first line, up to last_line, that starts with a tab and holds more than
// a comment: yaml-cpp's own error there ("illegal map value") says nothing
// about the tab.
int FirstTabIndentedLine(absl::string_view text, int last_line) {
  int line = 1;
  for (size_t start = 0; start < text.size() && line <= last_line; ++line) {
    size_t end = text.find('\n', start);
    if (end == absl::string_view::npos) end = text.size();
    const absl::string_view content = text.substr(start, end - start);
    const absl::string_view rest = absl::StripLeadingAsciiWhitespace(content);
    if (absl::StartsWith(content, "\t") && !rest.empty() && rest[0] != '#') return line;
    start = end + 1;
  }
  return 0;
}

// Where the document after the first one starts, if text has one. Only
// yaml-cpp's events, and at most two documents: YAML::LoadAll can loop
// forever on text after a document that its parser does not consume
// (yaml-cpp pull request 1319, after 0.8), so it is not used.
std::optional<YAML::Mark> SecondDocument(const std::string& text) {
  class FirstMark : public YAML::EventHandler {
   public:
    void OnDocumentStart(const YAML::Mark& mark) override { mark_ = mark; }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
    YAML::Mark mark_ = YAML::Mark::null_mark();
  };
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  FirstMark first, second;
  if (!parser.HandleNextDocument(first) || !parser.HandleNextDocument(second)) {
    return std::nullopt;
  }
  return second.mark_;
}

absl::StatusOr<WebConfig> ParseDocument(const YAML::Node& document) {
  WebConfig config;
  absl::StatusOr<std::vector<Entry>> sections =
      EntriesOf(document, LineOf(document.Mark()), "the file");
  if (!sections.ok()) return sections.status();
  for (const Entry& section : *sections) {
    absl::Status status;
    if (section.key == "basic_auth_users") {
      status = ParseUsers(section, &config);
    } else if (section.key == "http_server_config") {
      status = ParseHttpServerConfig(section, &config);
    } else if (section.key == "tls_server_config") {
      status = ParseTlsServerConfig(section, &config);
    } else {
      status = LineError(section.line, absl::StrCat("unknown key ", Quote(section.key),
                                                    " (supported: basic_auth_users, "
                                                    "http_server_config, tls_server_config)"));
    }
    if (!status.ok()) return status;
  }
  return config;
}

// Joins a relative path to dir, as exporter-toolkit does; "" stays "".
std::string Resolve(const std::string& dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || dir.empty()) return path;
  return absl::StrCat(dir, absl::EndsWith(dir, "/") ? "" : "/", path);
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
  if (absl::Status characters = CheckCharacters(text); !characters.ok()) return characters;
  // The one place yaml-cpp's exceptions (syntax errors, nesting beyond its
  // depth limit) become a Status. Nothing below walks the tree recursively:
  // an alias can make it cyclic.
  try {
    const std::string copy(text);
    const YAML::Node document = YAML::Load(copy);
    if (std::optional<YAML::Mark> second = SecondDocument(copy); second.has_value()) {
      return LineError(LineOf(*second),
                       "text after the end of the first YAML document (a --- or a stray "
                       "bracket?): a web config file holds one document");
    }
    return ParseDocument(document);
  } catch (const YAML::DeepRecursion& e) {
    return LineError(LineOf(e.mark), "nested too deeply for a web config file");
  } catch (const YAML::Exception& e) {
    const int line = LineOf(e.mark);
    if (int tab_line = FirstTabIndentedLine(text, line); tab_line != 0) {
      return LineError(tab_line, "tab character in the indentation: YAML indents with spaces only");
    }
    return LineError(line, absl::StrCat("invalid YAML (column ", e.mark.column + 1, "): ", e.msg));
  }
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
  if (config->tls.has_value()) {
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    config->tls->cert_file = Resolve(dir, config->tls->cert_file);
    config->tls->key_file = Resolve(dir, config->tls->key_file);
    config->tls->client_ca_file = Resolve(dir, config->tls->client_ca_file);
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
