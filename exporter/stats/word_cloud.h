// The word cloud: words submitted through POST /api/v1/words (the original
// demo's POST /word), counted in a bounded vocabulary and shown on the live
// map.
#ifndef EXPORTER_STATS_WORD_CLOUD_H_
#define EXPORTER_STATS_WORD_CLOUD_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace geoip {

// Why Add refused a word; each is counted.
enum class WordRefusal : uint8_t {
  kEmpty,      // nothing but ASCII whitespace, or nothing visible at all
  kTooLong,    // over kMaxCodePoints code points or kMaxBytes bytes
  kNotUtf8,    // invalid UTF-8: bad bytes, overlong forms, surrogates, > U+10FFFF
  kControl,    // C0/C1 controls, DEL, U+2028/U+2029 (line and paragraph breaks)
  kDirection,  // bidirectional controls: U+061C, U+200E, U+200F, U+202A-U+202E,
               // U+2066-U+2069
  kInvisible,  // other invisible characters (see word_cloud.cc's list)
};
inline constexpr size_t kWordRefusalCount = 6;

// The label of a reason for metrics: "empty", "too_long", "not_utf8",
// "control", "direction" or "invisible".
absl::string_view WordRefusalLabel(WordRefusal reason);

// Counts of words, at most `max_words` of them.
//
// What a word is: the submitted text with leading and trailing ASCII
// whitespace removed, at most kMaxCodePoints code points and kMaxBytes
// bytes of valid UTF-8, without controls, bidirectional controls or the
// invisible characters word_cloud.cc lists, and with at least one
// character that is neither a space nor one of the joiners and variation
// selectors it allows (U+200C, U+200D, U+FE00-U+FE0F, U+E0100-U+E01EF, which
// emoji sequences and some scripts need). Words are kept as typed: no case
// folding and no Unicode normalisation, so "Hello", "hello" and a
// decomposed "é" are three words; folding only ASCII would treat "Hello"
// and "Émile" differently, and full folding needs Unicode tables this
// exporter does not carry. Markup is text: "<script>" is a word like any
// other and stored as is; the page renders words with textContent.
//
// When the vocabulary is full, a new word evicts the word with the smallest
// count, and among those the one counted least recently; evicted() counts
// them. Counts only increase while a word is held.
//
// Not thread-safe: ConnectionStats owns one and guards it.
class WordCloud {
 public:
  static constexpr size_t kMaxCodePoints = 32;
  static constexpr size_t kMaxBytes = 128;

  // One word and its count.
  struct Entry {
    std::string word;
    uint64_t count;
  };

  // Holds at most `max_words` words; with 0 it holds none (each accepted
  // word is evicted at once).
  explicit WordCloud(size_t max_words);

  // Counts one submission of `raw`. InvalidArgument, with a message meant
  // for the submitter, when it is no word by the rules above; the message
  // names code points as U+XXXX and never repeats the text.
  absl::Status Add(std::string_view raw);

  // Up to `max` words, most counted first; ties in byte order of the word.
  std::vector<Entry> Snapshot(size_t max) const;

  // Words held.
  size_t size() const { return words_.size(); }
  size_t max_words() const { return max_words_; }
  // Submissions counted since start (accepted words, evicted ones included).
  uint64_t accepted() const { return accepted_; }
  // Words evicted to make room for a new one.
  uint64_t evicted() const { return evicted_; }
  // Submissions refused for `reason`.
  uint64_t refused(WordRefusal reason) const { return refused_[static_cast<size_t>(reason)]; }

  // Approximate heap plus inline bytes held.
  size_t MemoryBytes() const;

 private:
  // (count, sequence number of the last count): the eviction order, smallest
  // first. Sequence numbers are unique, so ranks are too.
  using Rank = std::pair<uint64_t, uint64_t>;

  const size_t max_words_;
  absl::flat_hash_map<std::string, Rank> words_;
  std::map<Rank, std::string> by_rank_;
  uint64_t sequence_ = 0;
  uint64_t accepted_ = 0;
  uint64_t evicted_ = 0;
  uint64_t refused_[kWordRefusalCount] = {};
};

// Checks `word` (already trimmed) against the rules above: OK, or
// InvalidArgument with the message Add returns, and the reason in `reason`.
// Exposed for the fuzz target and tests.
absl::Status ValidateWord(std::string_view word, WordRefusal* reason);

}  // namespace geoip

#endif  // EXPORTER_STATS_WORD_CLOUD_H_
