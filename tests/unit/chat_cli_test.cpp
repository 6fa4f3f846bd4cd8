// `frugal chat` through the real binary: a two-turn conversation where the second turn's prompt
// (the whole conversation, re-templated) reuses the first turn's K/V from the prefix cache, and
// greedy answers are the same with the prefix cache off.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "cli_runner.h"
#include "test_util.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;

using ChatRun = test::CliResult;

ChatRun chat(const std::string& args, const std::string& input) {
  return test::run_cli("chat " + args, input);
}

// (prompt tokens, tokens from the prefix cache) of each "turn N:" statistics line.
std::vector<std::pair<int, int>> turns(const std::string& err) {
  std::vector<std::pair<int, int>> t;
  const std::regex re(R"(turn \d+: prompt (\d+) tokens \((\d+) from the prefix cache)");
  for (std::sregex_iterator it(err.begin(), err.end(), re), end; it != end; ++it)
    t.emplace_back(std::stoi((*it)[1]), std::stoi((*it)[2]));
  return t;
}

TEST(ChatCli, SecondTurnReusesTheConversationFromThePrefixCache) {
  const std::string model = test::default_model_path();
  if (!test::file_exists(model)) GTEST_SKIP() << "no " << model;
  const std::string args = "-m " + model + " -n 6 --temp 0 -t 2 --block-size 8 --system "
                           "\"You are a terse assistant who answers in one short sentence.\"";
  const std::string input = "What is the capital of France?\nAnd of Italy?\n";
  const ChatRun cached = chat(args, input);
  ASSERT_EQ(cached.exit_code, 0) << cached.err;
  const auto t = turns(cached.err);
  ASSERT_EQ(t.size(), 2u) << cached.err;
  EXPECT_EQ(t[0].second, 0);
  // The second prompt starts with the whole first turn; at least the system prompt and the
  // first question (all full blocks of 8 before the first answer) come from the cache.
  EXPECT_GT(t[1].first, t[0].first);
  EXPECT_GE(t[1].second, (t[0].first / 8) * 8) << cached.err;
  EXPECT_LT(t[1].second, t[1].first);

  const ChatRun fresh = chat(args + " --no-prefix-cache", input);
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  const auto f = turns(fresh.err);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[1].second, 0);
  EXPECT_EQ(f[1].first, t[1].first);
  EXPECT_EQ(fresh.out, cached.out);  // the cache changes the work done, not the answers
}

TEST(ChatCli, BadFlagsAreCleanErrors) {
  const std::string model = test::default_model_path();
  if (!test::file_exists(model)) GTEST_SKIP() << "no " << model;
  ChatRun r = chat("-m " + model + " --kv-cache contiguous", "hi\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("paged"), std::string::npos) << r.err;
  r = chat("-m " + model + " --block-size 3", "hi\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("power of two"), std::string::npos) << r.err;
  r = chat("-m /nonexistent.gguf", "hi\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace frugal
