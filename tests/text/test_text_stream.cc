// Utf8Stream and StopMatcher: Unicode's replacement practice on its own example, split
// sequences held until complete whatever the split, and stop strings never shown in part.
// tests/text/test_chat_template.py also compares Utf8Stream with Python's decoder on random bytes.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "mla/error.h"
#include "mla/text_stream.h"

namespace mla {
namespace {

const std::string kFffd = "\xef\xbf\xbd";

std::string stream_all(const std::vector<std::string>& chunks) {
  Utf8Stream s;
  std::string out;
  for (const std::string& c : chunks) out += s.push(c);
  return out + s.finish();
}

TEST(Utf8Stream, ReplacesMaximalSubpartsAsTheUnicodeStandardsExample) {
  // The Unicode Standard, chapter 3, table 3-8 (U+FFFD for maximal subparts).
  const std::string bytes = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  const std::string want = "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d";
  EXPECT_EQ(stream_all({bytes}), want);
  std::vector<std::string> one_by_one;
  for (char c : bytes) one_by_one.emplace_back(1, c);
  EXPECT_EQ(stream_all(one_by_one), want);
  // Surrogates, overlongs and beyond U+10FFFF are never a valid prefix: one U+FFFD per byte.
  EXPECT_EQ(stream_all({"\xED\xA0\x80"}), kFffd + kFffd + kFffd);
  EXPECT_EQ(stream_all({"\xC0\xAF"}), kFffd + kFffd);
  EXPECT_EQ(stream_all({"\xF4\x90\x80\x80"}), kFffd + kFffd + kFffd + kFffd);
  EXPECT_EQ(stream_all({"\xE0\x80"}), kFffd + kFffd);
}

TEST(Utf8Stream, HoldsASplitSequenceUntilItCompletesOrCannot) {
  Utf8Stream s;
  EXPECT_EQ(s.push("a\xE4\xBD"), "a");
  EXPECT_EQ(s.pending(), 2u);
  EXPECT_EQ(s.push("\xA0"), "\xE4\xBD\xA0");  // 你
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_EQ(s.push("\xF0\x9F"), "");
  EXPECT_EQ(s.push("\x98"), "");
  EXPECT_EQ(s.push("\x80!"), "\xF0\x9F\x98\x80!");  // 😀 over three tokens
  EXPECT_EQ(s.push("\xE4\xBD"), "");
  EXPECT_EQ(s.push("A"), kFffd + "A");  // cannot complete: replaced as soon as that is certain
  EXPECT_EQ(s.push("\xC3"), "");
  EXPECT_EQ(s.finish(), kFffd);  // the stream ended inside a sequence
  EXPECT_EQ(s.finish(), "");
}

TEST(Utf8Stream, ValidTextComesOutWholeAtCodePointBoundariesWhateverTheSplit) {
  const std::string text = "aé你好 😀 ü\xD8\xB9\xD8\xB1\xD8\xA8\xD9\x8A z";
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      Utf8Stream s;
      std::string out;
      for (const std::string& piece : {text.substr(0, i), text.substr(i, j - i), text.substr(j)}) {
        out += s.push(piece);
        // Everything emitted so far ends on a code point boundary of the text.
        ASSERT_TRUE(out.size() == text.size() ||
                    (static_cast<unsigned char>(text[out.size()]) & 0xc0) != 0x80);
        ASSERT_EQ(out, text.substr(0, out.size()));
      }
      EXPECT_EQ(out + s.finish(), text);
    }
  }
}

TEST(Utf8Stream, ChunkingNeverChangesTheResultOnRandomBytes) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) {
      // Biased toward lead and continuation bytes so that near-valid sequences are common.
      const uint64_t r = rng() % 4;
      bytes += static_cast<char>(r == 0   ? rng() % 0x80
                                 : r == 1 ? 0x80 + rng() % 0x40
                                          : 0xc0 + rng() % 0x40);
    }
    const std::string whole = stream_all({bytes});
    std::vector<std::string> chunks;
    for (size_t k = 0; k < bytes.size();) {
      const size_t len = 1 + rng() % 4;
      chunks.push_back(bytes.substr(k, len));
      k += len;
    }
    EXPECT_EQ(stream_all(chunks), whole);
  }
}

TEST(StopMatcher, HoldsBackPossibleStartsAndStopsBeforeTheMatch) {
  StopMatcher m({"</s>", "STOP"});
  EXPECT_EQ(m.push("Hello <").text, "Hello ");
  EXPECT_EQ(m.push("b").text, "<b");  // "<b" cannot start a stop string: released
  EXPECT_EQ(m.push(" ST").text, " ");
  StopMatcher::Result r = m.push("OP and more");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(m.matched(), "STOP");
  EXPECT_TRUE(m.push("anything").text.empty());
  EXPECT_EQ(m.finish(), "");

  StopMatcher n({"abc", "bcd"});
  r = n.push("xabcd");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "x");  // the earliest match wins
  EXPECT_EQ(n.matched(), "abc");

  StopMatcher o({"\n\n"});
  EXPECT_EQ(o.push("line\n").text, "line");
  EXPECT_EQ(o.finish(), "\n");  // ended without a stop: the held text is released

  try {
    StopMatcher bad({"ok", ""});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "stop: a stop string must not be empty");
  }
}

TEST(StopMatcher, RandomTextAndChunksGiveTheTextUpToTheFirstStop) {
  std::mt19937_64 rng(3);
  const std::vector<std::string> stops = {"aba", "bb", "cab"};
  for (int trial = 0; trial < 500; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 30);
    for (int k = 0; k < n; ++k) text += static_cast<char>('a' + rng() % 3);
    size_t first = std::string::npos;
    for (const std::string& s : stops) first = std::min(first, text.find(s));
    const std::string want = text.substr(0, first);
    StopMatcher m(stops);
    std::string out;
    bool stopped = false;
    for (size_t k = 0; k < text.size() && !stopped;) {
      const size_t len = 1 + rng() % 5;
      const StopMatcher::Result r = m.push(text.substr(k, len));
      out += r.text;
      stopped = r.stopped;
      ASSERT_EQ(out, want.substr(0, out.size())) << text;  // never shows what it must not
      k += len;
    }
    if (!stopped) out += m.finish();
    EXPECT_EQ(stopped, first != std::string::npos) << text;
    EXPECT_EQ(out, want) << text;
  }
}

}  // namespace
}  // namespace mla
