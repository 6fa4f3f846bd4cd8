// `frugal chat` through the real binary: a two-turn conversation where the second turn's prompt
// (the whole conversation, re-templated) reuses the first turn's K/V from the prefix cache, and
// greedy answers are the same with the prefix cache off; a conversation that outgrows the
// context, /reset and /exit; --device cuda without a GPU. (The GPU chat's tokens against the
// CPU's: tests/cuda/cuda_chat_test.cpp.)
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

// A message that makes the conversation outgrow --ctx-size: one error line naming both sizes,
// the message is dropped (the next turn's prompt does not contain it), /reset starts over with
// the same answer, /exit ends (later lines are not read), and the exit code says it failed.
TEST(ChatCli, ConversationOutgrowingTheContextIsOneErrorLineAndResetRecovers) {
  const std::string model = test::default_model_path();
  if (!test::file_exists(model)) GTEST_SKIP() << "no " << model;
  const std::string input =
      "Hi\nPlease tell me a long story about a dragon who lives in a castle by the sea.\n"
      "/reset\nHi\n/exit\nThis line is never read.\n";
  const ChatRun r = chat("-m " + model + " -n 4 --temp 0 -t 2 --ctx-size 48", input);
  EXPECT_FALSE(r.signaled) << r.err;
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const auto t = turns(r.err);
  ASSERT_EQ(t.size(), 2u) << r.err;
  EXPECT_LE(t[0].first, 48);
  EXPECT_EQ(t[1].first, t[0].first);  // after /reset: "Hi" alone again
  const std::regex err_re(R"(frugal: error: the conversation is (\d+) tokens with this message, )"
                          R"(more than the context holds \(48 tokens, --ctx-size\))");
  std::smatch em;
  ASSERT_TRUE(std::regex_search(r.err, em, err_re)) << r.err;
  EXPECT_GT(std::stoi(em[1]), 48);
  size_t n_errors = 0;
  for (size_t p = r.err.find("frugal: error: "); p != std::string::npos;
       p = r.err.find("frugal: error: ", p + 1))
    ++n_errors;
  EXPECT_EQ(n_errors, 1u) << r.err;
  EXPECT_NE(r.err.find("conversation reset"), std::string::npos) << r.err;
  // Two answers, the same greedy text both times.
  const size_t nl = r.out.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_FALSE(r.out.substr(0, nl).empty());
  EXPECT_EQ(r.out, r.out.substr(0, nl + 1) + r.out.substr(0, nl + 1));
}

// --device cuda where it cannot run (CI: no GPU, maybe no CUDA build): one error line before
// any model is opened, as `frugal run --device cuda`; CPU-only flags with cuda are named.
TEST(ChatCli, CudaWithoutGpuIsAClearError) {
  if (test::has_gpu_node()) GTEST_SKIP() << "a GPU is present: --device cuda would run";
  test::expect_one_line_error(chat("-m /nonexistent/model.gguf --device cuda", "hi\n"),
                              "frugal was built without CUDA", "no CUDA device: ");
}

TEST(ChatCli, BadDeviceFlagsAreNamed) {
  const std::string m = "-m /nonexistent/model.gguf";
  test::expect_one_line_error(chat(m + " --device tpu", "hi\n"),
                              "--device must be cpu or cuda, got 'tpu'");
  test::expect_one_line_error(chat(m + " --device cuda --kv-dtype int8", "hi\n"),
                              "on --device cuda the KV cache is paged bf16");
  test::expect_one_line_error(chat(m + " --device cuda --gpu-memory-utilization 0", "hi\n"),
                              "--gpu-memory-utilization must be in (0, 1]");
}

}  // namespace
}  // namespace frugal
