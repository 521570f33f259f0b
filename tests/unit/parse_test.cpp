#include <gtest/gtest.h>

#include "shunt/error.h"
#include "shunt/parse.h"

using namespace shunt;
using namespace std::chrono_literals;

TEST(Parse, Durations) {
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("5s"), 5000ms);
  EXPECT_EQ(parse_duration("5"), 5000ms);
  EXPECT_EQ(parse_duration("2m"), 120000ms);
  EXPECT_EQ(parse_duration("1h"), 3600000ms);
  for (const char* bad : {"", "s", "5 s", "-1s", "1.5s", "5d", "99999999999s"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(Parse, UnsignedDecimalAndHex) {
  EXPECT_EQ(parse_unsigned("0"), 0u);
  EXPECT_EQ(parse_unsigned("2645"), 2645u);
  EXPECT_EQ(parse_unsigned("0xa55"), 0xa55u);
  EXPECT_EQ(parse_unsigned("0XFF"), 0xffu);
  for (const char* bad : {"", "0x", "-1", "12a", "0xzz", " 1"}) {
    EXPECT_FALSE(parse_unsigned(bad).has_value()) << bad;
  }
}

TEST(Error, DescribeAddsStrerror) {
  EXPECT_EQ((Error{0, "plain"}).describe(), "plain");
  EXPECT_EQ((Error{ENOENT, "open x"}).describe(), "open x: No such file or directory");
  Result<int> r = Error{EINVAL, "bad"};
  EXPECT_FALSE(r.ok());
  Result<int> v = 3;
  EXPECT_EQ(*v, 3);
}
