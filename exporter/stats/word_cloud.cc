#include "exporter/stats/word_cloud.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

namespace geoip {
namespace {

bool In(char32_t c, char32_t first, char32_t last) { return c >= first && c <= last; }

// C0 and C1 controls and DEL, and the line and paragraph separators, which
// break a line like a newline does.
bool IsControl(char32_t c) { return c < 0x20 || In(c, 0x7f, 0x9f) || c == 0x2028 || c == 0x2029; }

// Bidirectional formatting characters: marks, embeddings, overrides and
// isolates. They reorder the text around them on screen, so a word could
// show as something other than what it says.
bool IsDirectionControl(char32_t c) {
  return c == 0x061c || c == 0x200e || c == 0x200f || In(c, 0x202a, 0x202e) ||
         In(c, 0x2066, 0x2069);
}

// Characters that render as nothing, so that a word could hide text or look
// the same as another word, or that are not characters at all:
//  - U+00AD soft hyphen, U+200B zero width space, U+2060 word joiner,
//    U+FEFF zero width no-break space (byte order mark);
//  - U+2061-U+2064 invisible mathematical operators, U+2065 (reserved);
//  - U+206A-U+206F deprecated format characters (symmetric swapping, Arabic
//    shaping, digit shapes);
//  - Hangul fillers U+115F, U+1160, U+3164, U+FFA0 and Khmer inherent
//    vowels U+17B4, U+17B5, which display as blank;
//  - U+180B-U+180F Mongolian variation selectors and vowel separator;
//  - U+FFF0-U+FFF8 (reserved) and U+FFF9-U+FFFB interlinear annotation
//    controls, which can hide a run of text;
//  - U+1BCA0-U+1BCA3 shorthand format controls, U+1D173-U+1D17A musical
//    format controls;
//  - U+E0000-U+E0FFF tags and reserved format characters, except the
//    variation selectors U+E0100-U+E01EF: tags are invisible copies of ASCII,
//    the usual way to smuggle hidden text;
//  - noncharacters: U+FDD0-U+FDEF and the last two code points of every plane.
// Allowed although invisible by themselves: U+200C and U+200D (joiners, which
// emoji sequences, Persian and Indic scripts need), the variation selectors
// U+FE00-U+FE0F and U+E0100-U+E01EF (emoji and ideograph forms) and U+034F.
bool IsInvisible(char32_t c) {
  return c == 0x00ad || c == 0x115f || c == 0x1160 || c == 0x17b4 || c == 0x17b5 ||
         In(c, 0x180b, 0x180f) || c == 0x200b || In(c, 0x2060, 0x2065) || In(c, 0x206a, 0x206f) ||
         c == 0x3164 || c == 0xfeff || c == 0xffa0 || In(c, 0xfff0, 0xfffb) ||
         In(c, 0x1bca0, 0x1bca3) || In(c, 0x1d173, 0x1d17a) || In(c, 0xe0000, 0xe00ff) ||
         In(c, 0xe01f0, 0xe0fff) || In(c, 0xfdd0, 0xfdef) || (c & 0xfffe) == 0xfffe;
}

// Spaces and the allowed invisible characters: a word of nothing else shows
// as blank.
bool IsBlank(char32_t c) {
  return c == 0x20 || c == 0xa0 || c == 0x1680 || In(c, 0x2000, 0x200a) || c == 0x202f ||
         c == 0x205f || c == 0x3000 || c == 0x034f || c == 0x200c || c == 0x200d ||
         In(c, 0xfe00, 0xfe0f) || In(c, 0xe0100, 0xe01ef);
}

// Decodes the code point at text[at] into *c and its length into *length;
// false for anything that is not well-formed UTF-8 (Unicode's table 3-7:
// no overlong forms, no surrogates, nothing past U+10FFFF, no truncation).
bool DecodeUtf8(std::string_view text, size_t at, char32_t* c, size_t* length) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  unsigned char low = 0x80, high = 0xbf;  // bounds of the second byte
  if (lead < 0x80) {
    *c = lead;
    *length = 1;
    return true;
  } else if (In(lead, 0xc2, 0xdf)) {
    *c = lead & 0x1f;
    *length = 2;
  } else if (In(lead, 0xe0, 0xef)) {
    *c = lead & 0x0f;
    *length = 3;
    if (lead == 0xe0) low = 0xa0;   // overlong below U+0800
    if (lead == 0xed) high = 0x9f;  // surrogates U+D800-U+DFFF
  } else if (In(lead, 0xf0, 0xf4)) {
    *c = lead & 0x07;
    *length = 4;
    if (lead == 0xf0) low = 0x90;   // overlong below U+10000
    if (lead == 0xf4) high = 0x8f;  // past U+10FFFF
  } else {
    return false;  // a continuation byte, an overlong lead (C0, C1) or F5-FF
  }
  if (text.size() - at < *length) return false;
  for (size_t i = 1; i < *length; ++i) {
    const unsigned char next = byte(at + i);
    if (next < (i == 1 ? low : 0x80) || next > (i == 1 ? high : 0xbf)) return false;
    *c = (*c << 6) | (next & 0x3f);
  }
  return true;
}

absl::Status Refuse(WordRefusal reason, WordRefusal* out, std::string message) {
  *out = reason;
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::string_view WordRefusalLabel(WordRefusal reason) {
  switch (reason) {
    case WordRefusal::kEmpty:
      return "empty";
    case WordRefusal::kTooLong:
      return "too_long";
    case WordRefusal::kNotUtf8:
      return "not_utf8";
    case WordRefusal::kControl:
      return "control";
    case WordRefusal::kDirection:
      return "direction";
    case WordRefusal::kInvisible:
      return "invisible";
  }
  return "unknown";
}

absl::Status ValidateWord(std::string_view word, WordRefusal* reason) {
  if (word.empty()) {
    return Refuse(WordRefusal::kEmpty, reason, "empty word: send the word as the request body");
  }
  if (word.size() > WordCloud::kMaxBytes) {
    return Refuse(WordRefusal::kTooLong, reason,
                  absl::StrFormat("word too long: %d bytes, at most %d (and %d characters)",
                                  word.size(), WordCloud::kMaxBytes, WordCloud::kMaxCodePoints));
  }
  size_t characters = 0;
  bool visible = false;
  for (size_t at = 0; at < word.size();) {
    char32_t c;
    size_t length;
    if (!DecodeUtf8(word, at, &c, &length)) {
      return Refuse(WordRefusal::kNotUtf8, reason,
                    absl::StrFormat("word is not valid UTF-8 (byte 0x%02X at offset %d)",
                                    static_cast<unsigned char>(word[at]), at));
    }
    if (IsControl(c)) {
      return Refuse(
          WordRefusal::kControl, reason,
          absl::StrFormat("word contains the control character U+%04X", static_cast<uint32_t>(c)));
    }
    if (IsDirectionControl(c)) {
      return Refuse(WordRefusal::kDirection, reason,
                    absl::StrFormat("word contains the text-direction control U+%04X",
                                    static_cast<uint32_t>(c)));
    }
    if (IsInvisible(c)) {
      return Refuse(WordRefusal::kInvisible, reason,
                    absl::StrFormat("word contains the invisible character U+%04X",
                                    static_cast<uint32_t>(c)));
    }
    visible = visible || !IsBlank(c);
    ++characters;
    at += length;
  }
  if (characters > WordCloud::kMaxCodePoints) {
    return Refuse(WordRefusal::kTooLong, reason,
                  absl::StrFormat("word too long: %d characters, at most %d", characters,
                                  WordCloud::kMaxCodePoints));
  }
  if (!visible) {
    return Refuse(WordRefusal::kEmpty, reason, "word has no visible character");
  }
  return absl::OkStatus();
}

WordCloud::WordCloud(size_t max_words) : max_words_(max_words) {}

absl::Status WordCloud::Add(std::string_view raw) {
  const absl::string_view word =
      absl::StripAsciiWhitespace(absl::string_view(raw.data(), raw.size()));
  WordRefusal reason;
  if (absl::Status status = ValidateWord(std::string_view(word.data(), word.size()), &reason);
      !status.ok()) {
    ++refused_[static_cast<size_t>(reason)];
    return status;
  }
  ++accepted_;
  if (max_words_ == 0) {
    ++evicted_;
    return absl::OkStatus();
  }
  if (auto it = words_.find(word); it != words_.end()) {
    auto node = by_rank_.extract(it->second);
    it->second = Rank(it->second.first + 1, ++sequence_);
    node.key() = it->second;
    by_rank_.insert(std::move(node));
    return absl::OkStatus();
  }
  if (words_.size() >= max_words_) {
    // The smallest count, counted least recently.
    auto least = by_rank_.begin();
    words_.erase(least->second);
    by_rank_.erase(least);
    ++evicted_;
  }
  const Rank rank(1, ++sequence_);
  words_.emplace(std::string(word), rank);
  by_rank_.emplace(rank, std::string(word));
  return absl::OkStatus();
}

std::vector<WordCloud::Entry> WordCloud::Snapshot(size_t max) const {
  std::vector<Entry> entries;
  entries.reserve(words_.size());
  for (const auto& [word, rank] : words_) entries.push_back({word, rank.first});
  const size_t shown = std::min(max, entries.size());
  std::partial_sort(entries.begin(), entries.begin() + shown, entries.end(),
                    [](const Entry& a, const Entry& b) {
                      if (a.count != b.count) return a.count > b.count;
                      return a.word < b.word;
                    });
  entries.resize(shown);
  return entries;
}

size_t WordCloud::MemoryBytes() const {
  // A std::map node: three pointers and a colour besides its value.
  constexpr size_t kMapNode = 4 * sizeof(void*);
  size_t bytes = sizeof(*this) +
                 words_.capacity() * (sizeof(std::pair<const std::string, Rank>) + 1) +
                 by_rank_.size() * (kMapNode + sizeof(std::pair<const Rank, std::string>));
  for (const auto& [word, rank] : words_) {
    // Each word is held twice; short ones fit in the string itself.
    if (word.capacity() > 15) bytes += 2 * (word.capacity() + 1);
  }
  return bytes;
}

}  // namespace geoip
