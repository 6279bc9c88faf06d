#include "exporter/web/words_endpoint.h"

#include <string>

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace geoip {
namespace {

std::vector<IpNetwork> Blocks(std::initializer_list<const char*> texts) {
  std::vector<IpNetwork> blocks;
  for (const char* text : texts) blocks.push_back(ParseIpNetwork(text).value());
  return blocks;
}

HttpRequest Post(std::string body, std::string from = "127.0.0.1") {
  HttpRequest request;
  request.method = "POST";
  request.path = "/api/v1/words";
  request.remote_address = std::move(from);
  request.body = std::move(body);
  return request;
}

TEST(WordsEndpoint, CountsWordsFromAllowedBlocksOnly) {
  ConnectionStats stats;
  WordsEndpoint words(Blocks({"127.0.0.0/8", "::1/128", "172.30.0.0/16"}), &stats);
  const uint64_t version = stats.Version();
  EXPECT_EQ(words.Post(Post("ebpf")).status, 204);
  EXPECT_EQ(words.Post(Post("ebpf", "::1")).status, 204);
  EXPECT_EQ(words.Post(Post("geo", "172.30.4.5")).status, 204);
  EXPECT_GT(stats.Version(), version);  // live-map streams wake up
  for (const char* outside : {"8.8.8.8", "::2", "10.0.0.1", "", "not an address"}) {
    const HttpResponse refused = words.Post(Post("nope", outside));
    EXPECT_EQ(refused.status, 403) << outside;
    EXPECT_TRUE(absl::StrContains(refused.body, "--web.words-from")) << refused.body;
  }
  const std::vector<WordCloud::Entry> cloud = stats.Words(10);
  ASSERT_EQ(cloud.size(), 2u);
  EXPECT_EQ(cloud[0].word, "ebpf");
  EXPECT_EQ(cloud[0].count, 2u);
  EXPECT_EQ(cloud[1].word, "geo");
  EXPECT_EQ(stats.WordTotals().counted, 3u);
}

TEST(WordsEndpoint, RefusedWordsSayWhyAndAreCountedNotShown) {
  ConnectionStats stats;
  WordsEndpoint words(Blocks({"127.0.0.1"}), &stats);
  const uint64_t version = stats.Version();
  const HttpResponse rtl =
      words.Post(Post("abc\xE2\x80\xAE"
                      "def"));  // U+202E
  EXPECT_EQ(rtl.status, 400);
  EXPECT_TRUE(absl::StrContains(rtl.body, "U+202E")) << rtl.body;
  EXPECT_EQ(words.Post(Post(std::string(200, 'a'))).status, 400);
  EXPECT_EQ(words.Post(Post("bell\a")).status, 400);
  EXPECT_EQ(words.Post(Post("   ")).status, 400);
  EXPECT_EQ(stats.Version(), version);
  EXPECT_TRUE(stats.Words(10).empty());
  const ConnectionStats::WordCounts totals = stats.WordTotals();
  EXPECT_EQ(totals.counted, 0u);
  uint64_t refused = 0;
  for (uint64_t count : totals.refused) refused += count;
  EXPECT_EQ(refused, 4u);
}

TEST(WordsEndpoint, IsOffWithoutBlocksAndPostOnly) {
  ConnectionStats stats;
  WordsEndpoint off({}, &stats);
  const HttpResponse response = off.Post(Post("ebpf"));
  EXPECT_EQ(response.status, 404);
  EXPECT_TRUE(absl::StrContains(response.body, "--web.words-from=")) << response.body;
  EXPECT_TRUE(stats.Words(10).empty());

  WordsEndpoint on(Blocks({"127.0.0.0/8"}), &stats);
  HttpRequest get = Post("");
  get.method = "GET";
  const HttpResponse wrong = on.Post(get);
  EXPECT_EQ(wrong.status, 405);
  ASSERT_EQ(wrong.headers.size(), 1u);
  EXPECT_EQ(wrong.headers[0].second, "POST");
}

}  // namespace
}  // namespace geoip
