#include "metrics/exposition.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace iron::metrics {
namespace {

TEST(Exposition, EscapesLabelValues) {
    EXPECT_EQ(escape_label_value("plain"), "plain");
    EXPECT_EQ(escape_label_value("a\"b"), "a\\\"b");
    EXPECT_EQ(escape_label_value("a\\b"), "a\\\\b");
    EXPECT_EQ(escape_label_value("a\nb"), "a\\nb");
    EXPECT_EQ(escape_label_value("tab\tstays"), "tab\tstays");  // only \, " and LF are escaped
}

TEST(Exposition, FormatsValues) {
    EXPECT_EQ(format_value(0), "0");
    EXPECT_EQ(format_value(42), "42");
    EXPECT_EQ(format_value(1e15), "1000000000000000");  // counters never switch to an exponent
    EXPECT_EQ(format_value(0.25), "0.25");
    EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(Exposition, FamilyAndSamples) {
    exposition_writer w;
    w.family("x_total", "Help with a \\ backslash\nand a newline.", "counter");
    w.sample("x_total", {}, 3);
    w.sample("x_total", {{"action", "allow"}, {"code", "200"}}, 1);
    w.sample("x_total", {{"transform", "we\"ird\n"}}, 2);
    EXPECT_EQ(w.text(),
              "# HELP x_total Help with a \\\\ backslash\\nand a newline.\n"
              "# TYPE x_total counter\n"
              "x_total 3\n"
              "x_total{action=\"allow\",code=\"200\"} 1\n"
              "x_total{transform=\"we\\\"ird\\n\"} 2\n");
}

TEST(Exposition, HistogramBucketsAreCumulativeAndEndWithInf) {
    histogram_snapshot h;
    h.bounds = {0.1, 1, 10};
    h.counts = {2, 0, 3, 1};  // per bucket; the last is above 10
    h.sum = 17.5;
    exposition_writer w;
    w.histogram("d_seconds", h, {{"listener", "http"}});
    EXPECT_EQ(w.text(),
              "d_seconds_bucket{listener=\"http\",le=\"0.1\"} 2\n"
              "d_seconds_bucket{listener=\"http\",le=\"1\"} 2\n"
              "d_seconds_bucket{listener=\"http\",le=\"10\"} 5\n"
              "d_seconds_bucket{listener=\"http\",le=\"+Inf\"} 6\n"
              "d_seconds_sum{listener=\"http\"} 17.5\n"
              "d_seconds_count{listener=\"http\"} 6\n");
}

}  // namespace
}  // namespace iron::metrics
