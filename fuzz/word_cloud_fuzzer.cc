// WordCloud::Add on arbitrary bytes (the body of POST /api/v1/words): the
// whole input as one word, then each of its lines, into a vocabulary of 1 to
// 8 words that the first byte picks. With the first byte's top bit set, each
// byte from 0x80 up stands for a code point at an edge of the rules (the
// refused ranges, the allowed joiners and variation selectors, the limits
// of UTF-8), encoded as UTF-8, so that the classification is reached as
// often as the decoder. Invariants, checked with a UTF-8 decoder of its own
// rather than the one under test: Add accepts exactly what ValidateWord
// accepts after trimming; every stored word is well-formed UTF-8 of 1 to 32
// characters and at most 128 bytes, trimmed, without controls,
// text-direction controls or the invisible characters most used to hide
// text; the vocabulary never exceeds its cap; the counts add up.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/stats/word_cloud.h"

namespace {

bool IsAsciiSpace(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// The code points of `word`; aborts unless it is well-formed UTF-8.
std::vector<uint32_t> Decode(std::string_view word) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < word.size();) {
    const auto lead = static_cast<unsigned char>(word[i]);
    // The lead byte's leading ones: 0 for ASCII, 1 for a continuation byte,
    // else the sequence's length. Overlong forms are caught by the smallest
    // code point each length may encode.
    int ones = 0;
    while (ones < 8 && (lead & (0x80 >> ones))) ++ones;
    if (ones == 1 || ones > 4) abort();
    const size_t length = ones == 0 ? 1 : ones;
    static constexpr uint32_t kSmallest[] = {0, 0x80, 0x800, 0x10000};
    const uint32_t smallest = kSmallest[length - 1];
    uint32_t c = lead & (0xff >> (ones + 1));
    if (i + length > word.size()) abort();
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(word[i + k]);
      if ((next & 0xc0) != 0x80) abort();
      c = (c << 6) | (next & 0x3f);
    }
    if (c < smallest || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) abort();
    out.push_back(c);
    i += length;
  }
  return out;
}

bool Forbidden(uint32_t c) {
  const bool control = c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029;
  const bool direction = c == 0x061c || c == 0x200e || c == 0x200f ||
                         (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
  const bool invisible = c == 0x00ad || c == 0x200b || c == 0x2060 || c == 0xfeff ||
                         (c >= 0xe0000 && c <= 0xe007f) || (c >= 0xfff9 && c <= 0xfffb);
  return control || direction || invisible;
}

void CheckStoredWord(std::string_view word) {
  if (word.empty() || word.size() > geoip::WordCloud::kMaxBytes) abort();
  if (IsAsciiSpace(word.front()) || IsAsciiSpace(word.back())) abort();
  const std::vector<uint32_t> characters = Decode(word);
  if (characters.size() > geoip::WordCloud::kMaxCodePoints) abort();
  for (uint32_t c : characters) {
    if (Forbidden(c)) abort();
  }
}

// Code points at the edges of word_cloud.cc's classes.
constexpr uint32_t kEdges[] = {
    0x00,    0x09,    0x1f,    0x20,    0x7e,    0x7f,    0x80,     0x85,     0x9f,     0xa0,
    0xad,    0xe9,    0x34f,   0x5d0,   0x61b,   0x61c,   0x644,    0x115f,   0x1160,   0x17b4,
    0x17b5,  0x180b,  0x180e,  0x180f,  0x1810,  0x2000,  0x200a,   0x200b,   0x200c,   0x200d,
    0x200e,  0x200f,  0x2010,  0x2027,  0x2028,  0x2029,  0x202a,   0x202e,   0x202f,   0x205f,
    0x2060,  0x2064,  0x2065,  0x2066,  0x2069,  0x206a,  0x206f,   0x2070,   0x3000,   0x3164,
    0xd7ff,  0xe000,  0xfdcf,  0xfdd0,  0xfdef,  0xfdf0,  0xfe00,   0xfe0f,   0xfeff,   0xffa0,
    0xffef,  0xfff0,  0xfff9,  0xfffb,  0xfffc,  0xfffd,  0xfffe,   0xffff,   0x10000,  0x1bca0,
    0x1bca3, 0x1d173, 0x1d17a, 0x1f600, 0x1fffe, 0x1ffff, 0xe0000,  0xe0001,  0xe0041,  0xe007f,
    0xe00ff, 0xe0100, 0xe01ef, 0xe01f0, 0xe0fff, 0xe1000, 0x10fffd, 0x10fffe, 0x10ffff,
};

void AppendUtf8(uint32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3f)));
  }
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsAsciiSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsAsciiSpace(text.back())) text.remove_suffix(1);
  return text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t cap = 1 + data[0] % 8;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string edges;
  if (data[0] & 0x80) {
    for (unsigned char byte : input) {
      AppendUtf8(byte < 0x80 ? byte : kEdges[(byte - 0x80) % std::size(kEdges)], &edges);
    }
    input = edges;
  }
  std::vector<std::string_view> submissions = {input};
  for (size_t start = 0; start <= input.size();) {
    const size_t end = std::min(input.find('\n', start), input.size());
    submissions.push_back(input.substr(start, end - start));
    start = end + 1;
  }

  geoip::WordCloud cloud(cap);
  uint64_t refused_before = 0;
  for (std::string_view submission : submissions) {
    const uint64_t accepted_before = cloud.accepted();
    const absl::Status status = cloud.Add(submission);
    geoip::WordRefusal reason;
    if (status.ok() != geoip::ValidateWord(Trim(submission), &reason).ok()) abort();
    if (status.ok() != (cloud.accepted() == accepted_before + 1)) abort();
    if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument) abort();
    if (cloud.size() > cap) abort();

    uint64_t refused = 0;
    for (size_t r = 0; r < geoip::kWordRefusalCount; ++r) {
      refused += cloud.refused(static_cast<geoip::WordRefusal>(r));
    }
    if (refused != refused_before + (status.ok() ? 0 : 1)) abort();
    refused_before = refused;
  }
  if (cloud.accepted() + refused_before != submissions.size()) abort();
  if (cloud.evicted() > cloud.accepted()) abort();

  const std::vector<geoip::WordCloud::Entry> words = cloud.Snapshot(cap + 1);
  if (words.size() != cloud.size()) abort();
  uint64_t counted = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    CheckStoredWord(words[i].word);
    if (words[i].count == 0) abort();
    counted += words[i].count;
    // Most first, then byte order, each word once.
    if (i > 0 && (words[i - 1].count < words[i].count ||
                  (words[i - 1].count == words[i].count && words[i - 1].word >= words[i].word))) {
      abort();
    }
  }
  if (counted > cloud.accepted()) abort();
  return 0;
}
