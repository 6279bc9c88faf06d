#include "tests/support/metrics_text.h"

#include <algorithm>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace geoip {
namespace {

bool IsNameChar(char c, bool first) {
  return absl::ascii_isalpha(c) || c == '_' || c == ':' || (!first && absl::ascii_isdigit(c));
}

// Consumes a metric or label name from the front of text.
absl::string_view ConsumeName(absl::string_view* text) {
  size_t n = 0;
  while (n < text->size() && IsNameChar((*text)[n], n == 0)) ++n;
  absl::string_view name = text->substr(0, n);
  text->remove_prefix(n);
  return name;
}

std::string Escape(absl::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Consumes a quoted label value, undoing \\, \" and \n.
absl::StatusOr<std::string> ConsumeQuoted(absl::string_view* text) {
  if (text->empty() || text->front() != '"') return absl::InvalidArgumentError("expected '\"'");
  std::string value;
  for (size_t i = 1; i < text->size(); ++i) {
    char c = (*text)[i];
    if (c == '"') {
      text->remove_prefix(i + 1);
      return value;
    }
    if (c == '\\' && i + 1 < text->size()) {
      char next = (*text)[++i];
      value += next == 'n' ? '\n' : next;
    } else {
      value += c;
    }
  }
  return absl::InvalidArgumentError("unterminated label value");
}

absl::StatusOr<double> ParseValue(absl::string_view text) {
  if (text == "+Inf" || text == "Inf") return std::numeric_limits<double>::infinity();
  if (text == "-Inf") return -std::numeric_limits<double>::infinity();
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  double value = 0;
  if (!absl::SimpleAtod(text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("bad value '", text, "'"));
  }
  return value;
}

}  // namespace

std::string SeriesKey(absl::string_view name, MetricLabels labels) {
  if (labels.empty()) return std::string(name);
  std::sort(labels.begin(), labels.end());
  std::string key = absl::StrCat(name, "{");
  for (size_t i = 0; i < labels.size(); ++i) {
    absl::StrAppend(&key, i > 0 ? "," : "", labels[i].first, "=\"", Escape(labels[i].second), "\"");
  }
  key += "}";
  return key;
}

absl::StatusOr<MetricsText> MetricsText::Parse(absl::string_view text) {
  MetricsText metrics;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": ", what, ": '", line, "'"));
    };
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    Sample sample;
    absl::string_view rest = line;
    sample.name = std::string(ConsumeName(&rest));
    if (sample.name.empty()) return error("expected a metric name");
    if (!rest.empty() && rest.front() == '{') {
      rest.remove_prefix(1);
      while (true) {
        rest = absl::StripLeadingAsciiWhitespace(rest);
        if (!rest.empty() && rest.front() == '}') break;
        std::string label(ConsumeName(&rest));
        if (label.empty() || rest.empty() || rest.front() != '=') {
          return error("expected label=\"value\"");
        }
        rest.remove_prefix(1);
        absl::StatusOr<std::string> value = ConsumeQuoted(&rest);
        if (!value.ok()) return error(value.status().message());
        if (!sample.labels.emplace(label, *value).second) return error("repeated label");
        rest = absl::StripLeadingAsciiWhitespace(rest);
        if (!rest.empty() && rest.front() == ',') rest.remove_prefix(1);
      }
      rest.remove_prefix(1);  // '}'
    }
    // The value, then an optional timestamp, which tests do not need.
    std::vector<absl::string_view> fields =
        absl::StrSplit(rest, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.empty() || fields.size() > 2) return error("expected a value");
    absl::StatusOr<double> value = ParseValue(fields[0]);
    if (!value.ok()) return error(value.status().message());
    sample.value = *value;
    MetricLabels labels(sample.labels.begin(), sample.labels.end());
    if (!metrics.series_.emplace(SeriesKey(sample.name, labels), sample.value).second) {
      return error("series appears twice");
    }
    metrics.samples_.push_back(std::move(sample));
  }
  return metrics;
}

std::optional<double> MetricsText::Value(absl::string_view name, const MetricLabels& labels) const {
  auto it = series_.find(SeriesKey(name, labels));
  if (it == series_.end()) return std::nullopt;
  return it->second;
}

double MetricsText::Sum(absl::string_view name, const MetricLabels& match) const {
  double sum = 0;
  for (const Sample& sample : samples_) {
    if (sample.name != name) continue;
    bool matches = std::all_of(match.begin(), match.end(), [&](const auto& label) {
      auto it = sample.labels.find(label.first);
      return it != sample.labels.end() && it->second == label.second;
    });
    if (matches) sum += sample.value;
  }
  return sum;
}

std::vector<MetricsText::Series> MetricsText::Select(absl::string_view name,
                                                     const MetricLabels& match) const {
  std::vector<Series> selected;
  for (const Sample& sample : samples_) {
    if (sample.name != name) continue;
    const bool matches = std::all_of(match.begin(), match.end(), [&](const auto& label) {
      auto it = sample.labels.find(label.first);
      return it != sample.labels.end() && it->second == label.second;
    });
    if (matches) selected.push_back(Series{sample.labels, sample.value});
  }
  return selected;
}

}  // namespace geoip
