// Streaming text: UTF-8 sequences split across tokens are held until whole, stop strings split
// across tokens are found, and nothing is released that a stop string would have cut.
#include <gtest/gtest.h>

#include "text_stream.h"

namespace mla::serve {
namespace {

std::string feed(TextStream& s, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += s.push(p);
  return out + s.flush();
}

TEST(TextStream, HoldsSplitUtf8UntilComplete) {
  TextStream s({});
  EXPECT_EQ(s.push("a\xE4"), "a");  // first byte of 中 (E4 B8 AD)
  EXPECT_EQ(s.push("\xB8"), "");
  EXPECT_EQ(s.push("\xAD!"), "\xE4\xB8\xAD!");
  EXPECT_EQ(s.push("\xF0\x9F"), "");     // half an emoji
  EXPECT_EQ(s.flush(), "\xEF\xBF\xBD");  // the end came first: one replacement character
}

TEST(TextStream, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(sanitize_utf8("a\xFF"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(sanitize_utf8("\xC3\x28"), "\xEF\xBF\xBD(");
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(sanitize_utf8("ok \xC3\xA9"), "ok \xC3\xA9");
  TextStream s({});
  EXPECT_EQ(s.push("x\xFF"), "x\xEF\xBF\xBD");  // can never complete: not held
}

TEST(TextStream, StopStringAcrossTokens) {
  TextStream s({"</end>"});
  EXPECT_EQ(s.push("Hello </"), "Hello ");  // "</" may begin the stop
  EXPECT_EQ(s.push("en"), "");
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.push("d> more"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.push("ignored"), "");
  EXPECT_EQ(s.flush(), "");
}

TEST(TextStream, FalseStartIsReleased) {
  TextStream s({"STOP"});
  EXPECT_EQ(feed(s, {"ST", "OR", "Y"}), "STORY");
  EXPECT_FALSE(s.stopped());
}

TEST(TextStream, EarliestOfSeveralStops) {
  TextStream s({"bb", "a"});
  EXPECT_EQ(feed(s, {"xxbba"}), "xx");
  EXPECT_TRUE(s.stopped());
}

}  // namespace
}  // namespace mla::serve
