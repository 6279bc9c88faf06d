#include "exporter/web/basic_auth.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "exporter/web/web_config.h"

namespace geoip {
namespace {

// bcrypt of "secret" at cost 4, made once with crypt_gensalt_rn + crypt_r.
constexpr char kSecretHash[] = "$2b$04$.KheYHIoOb58VLuNzwqau.DxaMGZNFSQCKgW85mCNVhNv16gzUWFu";

using Users = std::map<std::string, std::string>;

std::string Header(absl::string_view user_password) {
  return absl::StrCat("Basic ", absl::Base64Escape(user_password));
}

TEST(BasicAuth, ParsesBasicCredentials) {
  std::optional<BasicCredentials> credentials = ParseBasicAuthorization(Header("alice:s3:cret"));
  ASSERT_TRUE(credentials.has_value());
  EXPECT_EQ(credentials->user, "alice");
  EXPECT_EQ(credentials->password, "s3:cret");  // only the first colon splits

  credentials = ParseBasicAuthorization("bAsIc   " + absl::Base64Escape("bob:") + " ");
  ASSERT_TRUE(credentials.has_value());
  EXPECT_EQ(credentials->user, "bob");
  EXPECT_EQ(credentials->password, "");

  // Unpadded base64 decodes too.
  credentials = ParseBasicAuthorization("Basic YWxpY2U6c2VjcmV0");
  ASSERT_TRUE(credentials.has_value());
  EXPECT_EQ(credentials->password, "secret");
}

TEST(BasicAuth, RejectsMalformedHeaders) {
  for (const std::string& header : std::vector<std::string>{
           "", "Basic", "Basic ", "Bearer " + absl::Base64Escape("alice:secret"),
           "Basicx" + absl::Base64Escape("alice:secret"),
           "Basic " + absl::Base64Escape("alice"),    // no colon
           "Basic " + absl::Base64Escape(":secret"),  // no user
           "Basic " + absl::Base64Escape(std::string("al\0ce:x", 8)),
           "Basic " + absl::Base64Escape(std::string("alice:x\0y", 9)),
           "Basic " + absl::Base64Escape("al\nce:x"),
           "Basic YWxp Y2U6c2VjcmV0",  // space inside
           "Basic YWxpY2U6c2VjcmV0!",  // not base64
           "Basic " + absl::Base64Escape(std::string(kMaxUserBytes + 1, 'u') + ":x"),
           "Basic " + absl::Base64Escape("u:" + std::string(kMaxPasswordBytes + 1, 'p')),
           "Basic " + std::string(2000, 'A')}) {
    EXPECT_FALSE(ParseBasicAuthorization(header).has_value()) << header;
  }
  EXPECT_TRUE(ParseBasicAuthorization(
                  "Basic " + absl::Base64Escape("u:" + std::string(kMaxPasswordBytes, 'p')))
                  .has_value());
}

TEST(BasicAuth, ComparesInConstantTime) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("xbc", "abc"));
}

TEST(BasicAuth, VerifiesTheKnownHash) {
  // The fixed hash really is bcrypt of "secret".
  EXPECT_EQ(Crypt("secret", kSecretHash), std::string(kSecretHash));
  EXPECT_NE(Crypt("Secret", kSecretHash), std::string(kSecretHash));
  EXPECT_FALSE(Crypt("secret", "$2b$04$short").has_value());
  EXPECT_FALSE(Crypt(std::string("a\0b", 3), kSecretHash).has_value());
}

TEST(BasicAuth, MakesHashesThatVerify) {
  absl::StatusOr<std::string> hash = BcryptHash("correct horse", 4);
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_TRUE(IsBcryptHash(*hash)) << *hash;
  EXPECT_TRUE(absl::StartsWith(*hash, "$2b$04$"));
  absl::StatusOr<std::string> other = BcryptHash("correct horse", 4);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*hash, *other);  // random salts
  BasicAuthenticator auth(Users{{"alice", *hash}});
  EXPECT_TRUE(auth.Verify("alice", "correct horse"));
  EXPECT_FALSE(auth.Verify("alice", "correct horsE"));
  EXPECT_FALSE(BcryptHash("x", 3).ok());
  EXPECT_FALSE(BcryptHash("x", 32).ok());
}

TEST(BasicAuth, AuthorizesOnlyTheRightUserAndPassword) {
  absl::StatusOr<std::string> bob_hash = BcryptHash("hunter2", 4);
  ASSERT_TRUE(bob_hash.ok());
  BasicAuthenticator auth(Users{{"alice", kSecretHash}, {"bob", *bob_hash}});
  EXPECT_TRUE(auth.Authorize(Header("alice:secret")));
  EXPECT_TRUE(auth.Authorize(Header("bob:hunter2")));
  EXPECT_FALSE(auth.Authorize(Header("alice:hunter2")));
  EXPECT_FALSE(auth.Authorize(Header("bob:secret")));
  EXPECT_FALSE(auth.Authorize(Header("carol:secret")));
  EXPECT_FALSE(auth.Authorize(Header("Alice:secret")));
  EXPECT_FALSE(auth.Authorize(Header("alice:secret ")));
  EXPECT_FALSE(auth.Authorize("Basic garbage"));
  EXPECT_FALSE(auth.Authorize(""));

  BasicAuthenticator nobody(std::map<std::string, std::string>{});
  EXPECT_FALSE(nobody.Authorize(Header("alice:secret")));
}

TEST(BasicAuth, CachesSuccessesNotFailures) {
  BasicAuthenticator auth(Users{{"alice", kSecretHash}});
  EXPECT_TRUE(auth.Verify("alice", "secret"));
  EXPECT_TRUE(auth.Verify("alice", "secret"));
  EXPECT_TRUE(auth.Verify("alice", "secret"));
  EXPECT_EQ(auth.stats().bcrypt_runs, 1u);
  EXPECT_EQ(auth.stats().cache_hits, 2u);
  // A wrong password never hits the cache, however often it is tried.
  EXPECT_FALSE(auth.Verify("alice", "wrong"));
  EXPECT_FALSE(auth.Verify("alice", "wrong"));
  EXPECT_FALSE(auth.Verify("nobody", "secret"));  // unknown users cost a run too
  EXPECT_EQ(auth.stats().bcrypt_runs, 4u);
  EXPECT_EQ(auth.stats().cache_hits, 2u);
}

TEST(BasicAuth, CacheIsBoundedOldestOut) {
  std::map<std::string, std::string> users;
  for (int i = 0; i < 3; ++i) users[absl::StrCat("user", i)] = kSecretHash;
  BasicAuthenticator auth(users, /*cache_capacity=*/2);
  EXPECT_TRUE(auth.Verify("user0", "secret"));
  EXPECT_TRUE(auth.Verify("user1", "secret"));
  EXPECT_TRUE(auth.Verify("user2", "secret"));  // evicts user0
  EXPECT_EQ(auth.stats().bcrypt_runs, 3u);
  EXPECT_TRUE(auth.Verify("user2", "secret"));
  EXPECT_TRUE(auth.Verify("user1", "secret"));
  EXPECT_EQ(auth.stats().cache_hits, 2u);
  EXPECT_TRUE(auth.Verify("user0", "secret"));  // evicted: bcrypt again
  EXPECT_EQ(auth.stats().bcrypt_runs, 4u);
}

TEST(BasicAuth, IsSafeFromManyThreads) {
  BasicAuthenticator auth(Users{{"alice", kSecretHash}}, 4);
  std::atomic<int> right{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (auth.Verify("alice", "secret")) right++;
        if (auth.Verify("alice", absl::StrCat("wrong", t, i % 2))) wrong++;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(right.load(), 160);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(auth.stats().cache_hits + auth.stats().bcrypt_runs, 320u);
}

}  // namespace
}  // namespace geoip
