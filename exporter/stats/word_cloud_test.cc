#include "exporter/stats/word_cloud.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace geoip {
namespace {

// "hello 3" per word, in Snapshot's order.
std::vector<std::string> Describe(const WordCloud& cloud, size_t max = 100) {
  std::vector<std::string> out;
  for (const WordCloud::Entry& e : cloud.Snapshot(max))
    out.push_back(absl::StrCat(e.word, " ", e.count));
  return out;
}

// The reason ValidateWord gives, or "ok".
std::string Verdict(std::string_view word) {
  WordRefusal reason;
  const absl::Status status = ValidateWord(word, &reason);
  if (status.ok()) return "ok";
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(WordRefusalLabel(reason));
}

TEST(WordCloud, CountsWordsTrimmedOfAsciiWhitespaceMostFirst) {
  WordCloud cloud(100);
  EXPECT_TRUE(cloud.Add("hello").ok());
  EXPECT_TRUE(cloud.Add("  hello\r\n").ok());
  EXPECT_TRUE(cloud.Add("\tkernel\v\f").ok());
  EXPECT_TRUE(cloud.Add("ebpf").ok());
  EXPECT_TRUE(cloud.Add("hello world").ok());  // inner spaces are part of the word
  EXPECT_TRUE(cloud.Add("kernel").ok());
  EXPECT_EQ(Describe(cloud),
            (std::vector<std::string>{"hello 2", "kernel 2", "ebpf 1", "hello world 1"}));
  EXPECT_EQ(Describe(cloud, 1), (std::vector<std::string>{"hello 2"}));
  EXPECT_TRUE(cloud.Snapshot(0).empty());
  EXPECT_EQ(cloud.size(), 4u);
  EXPECT_EQ(cloud.accepted(), 6u);
}

TEST(WordCloud, KeepsCaseAsTyped) {
  WordCloud cloud(10);
  ASSERT_TRUE(cloud.Add("Hello").ok());
  ASSERT_TRUE(cloud.Add("hello").ok());
  ASSERT_TRUE(cloud.Add("HELLO").ok());
  ASSERT_TRUE(cloud.Add("\xC3\x89mile").ok());  // Émile
  EXPECT_EQ(Describe(cloud),
            (std::vector<std::string>{"HELLO 1", "Hello 1", "hello 1", "\xC3\x89mile 1"}));
}

TEST(WordCloud, MarkupIsJustText) {
  WordCloud cloud(10);
  const std::string hostile[] = {
      "<script>", "<img src=x onerror=alert(1)>", "\"'&amp;", "</div><b>", "{{7*7}}",
      "${x}",     "javascript:alert(1)"};
  for (const std::string& word : hostile) EXPECT_TRUE(cloud.Add(word).ok()) << word;
  std::vector<std::string> words;
  for (const WordCloud::Entry& e : cloud.Snapshot(100)) words.push_back(e.word);
  std::sort(words.begin(), words.end());
  std::vector<std::string> expected(std::begin(hostile), std::end(hostile));
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(words, expected);
}

TEST(WordCloud, RefusesEmptyAndBlankWords) {
  EXPECT_EQ(Verdict(""), "empty");
  WordCloud cloud(10);
  for (const char* blank : {"", " ", "\t\r\n ", "\xC2\xA0", "\xE3\x80\x80",  // NBSP, U+3000
                            "\xE2\x80\x8D", "\xEF\xB8\x8F \xE2\x80\x8C"}) {  // ZWJ; VS16 ZWNJ
    const absl::Status status = cloud.Add(blank);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << blank;
  }
  EXPECT_EQ(cloud.Add(" ").message(), "empty word: send the word as the request body");
  EXPECT_EQ(cloud.Add("\xC2\xA0").message(), "word has no visible character");
  EXPECT_EQ(cloud.refused(WordRefusal::kEmpty), 9u);
  EXPECT_EQ(cloud.size(), 0u);
}

TEST(WordCloud, RefusesWordsOver32CharactersOr128Bytes) {
  EXPECT_EQ(Verdict(std::string(32, 'a')), "ok");
  EXPECT_EQ(Verdict(std::string(33, 'a')), "too_long");
  // 32 four-byte characters are 128 bytes: still a word.
  std::string emoji;
  for (int i = 0; i < 32; ++i) emoji += "\xF0\x9F\x90\x9D";  // U+1F41D
  EXPECT_EQ(Verdict(emoji), "ok");
  EXPECT_EQ(Verdict(emoji + "\xF0\x9F\x90\x9D"), "too_long");  // 132 bytes
  EXPECT_EQ(Verdict(emoji + "a"), "too_long");                 // 129 bytes

  WordCloud cloud(10);
  EXPECT_EQ(cloud.Add(std::string(33, 'a')).message(), "word too long: 33 characters, at most 32");
  EXPECT_EQ(cloud.Add(std::string(1 << 20, 'a')).message(),
            "word too long: 1048576 bytes, at most 128 (and 32 characters)");
  // Trimmed first: the surrounding whitespace does not count.
  EXPECT_TRUE(cloud.Add("   " + std::string(32, 'b') + "\n").ok());
  EXPECT_EQ(cloud.refused(WordRefusal::kTooLong), 2u);
}

TEST(WordCloud, RefusesInvalidUtf8) {
  for (const char* bad : {
           "\x80",              // continuation byte first
           "abc\xC3",           // truncated
           "\xC0\xAF",          // overlong '/'
           "\xC1\xBF",          // overlong
           "\xE0\x80\xAF",      // overlong three bytes
           "\xF0\x80\x80\xAF",  // overlong four bytes
           "\xED\xA0\x80",      // surrogate U+D800
           "\xED\xBF\xBF",      // surrogate U+DFFF
           "\xF4\x90\x80\x80",  // U+110000
           "\xF5\x80\x80\x80",  // lead byte past F4
           "\xFF",              //
           "ok\xE2\x82",        // truncated euro sign
           "\xE2\x28\xA1",      // bad continuation
       }) {
    EXPECT_EQ(Verdict(bad), "not_utf8") << bad;
  }
  // The edges that are valid.
  for (const char* good : {"\xC2\x80"
                           "a",
                           "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80",
                           "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBD"}) {
    EXPECT_NE(Verdict(good), "not_utf8") << good;
  }
  EXPECT_EQ(Verdict("\xF0\x9F\x98\x80"), "ok");  // U+1F600
  WordCloud cloud(10);
  EXPECT_EQ(cloud.Add("ab\xC0\xAF").message(), "word is not valid UTF-8 (byte 0xC0 at offset 2)");
  EXPECT_EQ(cloud.refused(WordRefusal::kNotUtf8), 1u);
}

TEST(WordCloud, RefusesControlCharacters) {
  for (const std::string& bad :
       {std::string("a\0b", 3), std::string("a\x01"), std::string("a\x1b[31m"), std::string("a\nb"),
        std::string("a\x7f"), std::string("a\xC2\x80"), std::string("a\xC2\x85"),  // U+0085 NEL
        std::string("a\xC2\x9F"),
        std::string("a\xE2\x80\xA8"
                    "b"),
        std::string("a\xE2\x80\xA9")}) {
    EXPECT_EQ(Verdict(bad), "control") << bad;
  }
  WordCloud cloud(10);
  EXPECT_EQ(cloud.Add("bell\x07").message(), "word contains the control character U+0007");
  EXPECT_EQ(cloud.refused(WordRefusal::kControl), 1u);
}

TEST(WordCloud, RefusesTextDirectionControls) {
  const char* direction[] = {
      "\xD8\x9C",                                                      // U+061C ARABIC LETTER MARK
      "\xE2\x80\x8E", "\xE2\x80\x8F",                                  // U+200E, U+200F
      "\xE2\x80\xAA", "\xE2\x80\xAB", "\xE2\x80\xAC",                  // U+202A-U+202C
      "\xE2\x80\xAD", "\xE2\x80\xAE",                                  // U+202D, U+202E RLO
      "\xE2\x81\xA6", "\xE2\x81\xA7", "\xE2\x81\xA8", "\xE2\x81\xA9",  // U+2066-U+2069
  };
  for (const char* c : direction) {
    EXPECT_EQ(Verdict(absl::StrCat("abc", c, "def")), "direction") << c;
  }
  WordCloud cloud(10);
  EXPECT_EQ(cloud
                .Add("gpj.\xE2\x80\xAE"
                     "exe")
                .message(),
            "word contains the text-direction control U+202E");
  EXPECT_EQ(cloud.refused(WordRefusal::kDirection), 1u);
  // Right-to-left text itself is fine.
  EXPECT_EQ(Verdict("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D"), "ok");          // שלום
  EXPECT_EQ(Verdict("\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7"), "ok");  // مرحبا
}

TEST(WordCloud, RefusesInvisibleCharactersButKeepsJoinersAndVariationSelectors) {
  for (const char* c : {
           "\xC2\xAD",          // U+00AD soft hyphen
           "\xE2\x80\x8B",      // U+200B zero width space
           "\xE2\x81\xA0",      // U+2060 word joiner
           "\xE2\x81\xA3",      // U+2063 invisible separator
           "\xE2\x81\xAF",      // U+206F nominal digit shapes
           "\xEF\xBB\xBF",      // U+FEFF byte order mark
           "\xE3\x85\xA4",      // U+3164 Hangul filler
           "\xE1\x85\x9F",      // U+115F Hangul choseong filler
           "\xE1\xA0\x8E",      // U+180E Mongolian vowel separator
           "\xEF\xBF\xB9",      // U+FFF9 interlinear annotation anchor
           "\xEF\xBF\xBE",      // U+FFFE noncharacter
           "\xEF\xB7\x90",      // U+FDD0 noncharacter
           "\xF3\xA0\x80\x81",  // U+E0001 language tag
           "\xF3\xA0\x81\x81",  // U+E0041 tag latin capital A
           "\xF0\x9D\x85\xB3",  // U+1D173 musical symbol begin beam
           "\xF0\x9F\xBF\xBF",  // U+1FFFF noncharacter
       }) {
    EXPECT_EQ(Verdict(absl::StrCat("ab", c, "cd")), "invisible") << c;
  }
  WordCloud cloud(10);
  EXPECT_EQ(cloud.Add("pay\xE2\x80\x8Bpal").message(),
            "word contains the invisible character U+200B");
  EXPECT_EQ(cloud.Add("x\xF3\xA0\x81\x81").message(),
            "word contains the invisible character U+E0041");
  EXPECT_EQ(cloud.refused(WordRefusal::kInvisible), 2u);
  // Family emoji (ZWJ sequence), red heart with VS16, Persian with ZWNJ.
  EXPECT_EQ(Verdict("\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7"),
            "ok");
  EXPECT_EQ(Verdict("\xE2\x9D\xA4\xEF\xB8\x8F"), "ok");
  EXPECT_EQ(Verdict("\xD9\x85\xDB\x8C\xE2\x80\x8C\xD8\xB1\xD9\x88\xD9\x85"),
            "ok");  // می‌روم
}

TEST(WordCloud, EvictsTheLeastCountedAndAmongThoseTheLeastRecentlyCounted) {
  WordCloud cloud(3);
  ASSERT_TRUE(cloud.Add("a").ok());
  ASSERT_TRUE(cloud.Add("b").ok());
  ASSERT_TRUE(cloud.Add("c").ok());
  ASSERT_TRUE(cloud.Add("a").ok());  // a 2, b 1, c 1
  // Full: d evicts b (count 1, counted before c).
  ASSERT_TRUE(cloud.Add("d").ok());
  EXPECT_EQ(Describe(cloud), (std::vector<std::string>{"a 2", "c 1", "d 1"}));
  EXPECT_EQ(cloud.evicted(), 1u);
  // c counted again: c 2 was counted after a 2; the ones are d, then e.
  ASSERT_TRUE(cloud.Add("c").ok());
  ASSERT_TRUE(cloud.Add("e").ok());  // evicts d
  EXPECT_EQ(Describe(cloud), (std::vector<std::string>{"a 2", "c 2", "e 1"}));
  ASSERT_TRUE(cloud.Add("e").ok());  // every count 2; a was counted least recently
  ASSERT_TRUE(cloud.Add("f").ok());  // evicts a
  EXPECT_EQ(Describe(cloud), (std::vector<std::string>{"c 2", "e 2", "f 1"}));
  // An evicted word starts again at 1.
  ASSERT_TRUE(cloud.Add("b").ok());  // evicts f
  EXPECT_EQ(Describe(cloud), (std::vector<std::string>{"c 2", "e 2", "b 1"}));
  EXPECT_EQ(cloud.evicted(), 4u);
  EXPECT_EQ(cloud.size(), 3u);
  EXPECT_EQ(cloud.accepted(), 10u);
  // A refused word evicts nothing.
  EXPECT_FALSE(cloud.Add("\x01").ok());
  EXPECT_EQ(cloud.size(), 3u);
  EXPECT_EQ(cloud.evicted(), 4u);
}

TEST(WordCloud, TheCapHoldsUnderManyDistinctWords) {
  WordCloud cloud(100);
  for (int round = 0; round < 5; ++round) ASSERT_TRUE(cloud.Add("ebpf").ok());
  const size_t small = cloud.MemoryBytes();
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(cloud.Add(absl::StrCat("word-number-", i)).ok());
  EXPECT_EQ(cloud.size(), 100u);
  EXPECT_EQ(cloud.evicted(), 100000u - 99u);
  // The only word counted more than once stays.
  EXPECT_EQ(cloud.Snapshot(1)[0].word, "ebpf");
  EXPECT_EQ(cloud.Snapshot(1)[0].count, 5u);
  EXPECT_GT(cloud.MemoryBytes(), small);
  EXPECT_LT(cloud.MemoryBytes(), 100 * 1024u);
}

TEST(WordCloud, ZeroHoldsNoWords) {
  WordCloud cloud(0);
  EXPECT_TRUE(cloud.Add("hello").ok());
  EXPECT_FALSE(cloud.Add("").ok());
  EXPECT_TRUE(cloud.Snapshot(10).empty());
  EXPECT_EQ(cloud.evicted(), 1u);
  EXPECT_EQ(cloud.refused(WordRefusal::kEmpty), 1u);
}

TEST(WordCloud, RefusalLabels) {
  EXPECT_EQ(WordRefusalLabel(WordRefusal::kEmpty), "empty");
  EXPECT_EQ(WordRefusalLabel(WordRefusal::kTooLong), "too_long");
  EXPECT_EQ(WordRefusalLabel(WordRefusal::kNotUtf8), "not_utf8");
  EXPECT_EQ(WordRefusalLabel(WordRefusal::kControl), "control");
  EXPECT_EQ(WordRefusalLabel(WordRefusal::kDirection), "direction");
  EXPECT_EQ(WordRefusalLabel(WordRefusal::kInvisible), "invisible");
  EXPECT_EQ(WordRefusalLabel(static_cast<WordRefusal>(200)), "unknown");
}

}  // namespace
}  // namespace geoip
