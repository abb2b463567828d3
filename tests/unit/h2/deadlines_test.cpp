#include "h2/deadlines.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace iron::h2 {
namespace {

using bytes = std::vector<std::uint8_t>;

constexpr std::uint8_t data_type = 0x0, headers_type = 0x1, settings_type = 0x4, ping_type = 0x6,
                       continuation_type = 0x9;
constexpr std::uint8_t end_headers = 0x4;

bytes frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream, std::size_t payload) {
    bytes f{static_cast<std::uint8_t>(payload >> 16), static_cast<std::uint8_t>(payload >> 8),
            static_cast<std::uint8_t>(payload), type, flags, static_cast<std::uint8_t>(stream >> 24),
            static_cast<std::uint8_t>(stream >> 16), static_cast<std::uint8_t>(stream >> 8),
            static_cast<std::uint8_t>(stream)};
    f.resize(f.size() + payload, 0xaa);
    return f;
}

bytes preface() {
    const std::string p = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    return bytes(p.begin(), p.end());
}

void feed(frame_tracker& t, const bytes& b) { t.feed(b.data(), b.size()); }

// Feeds one byte at a time and reports whether the head was pending after each byte but the last.
bool pending_throughout(frame_tracker& t, const bytes& b) {
    for (std::size_t i = 0; i < b.size(); ++i) {
        t.feed(&b[i], 1);
        if (i + 1 < b.size() && !t.head_pending()) return false;
    }
    return true;
}

frame_tracker opened_server() {
    frame_tracker t(true);
    feed(t, preface());
    feed(t, frame(settings_type, 0, 0, 6));
    return t;
}

TEST(H2FrameTracker, OpeningIsPendingUntilTheFirstFrameEnds) {
    frame_tracker t(true);
    EXPECT_TRUE(t.head_pending());
    EXPECT_TRUE(pending_throughout(t, preface()));
    EXPECT_TRUE(t.head_pending());  // preface alone is not enough: SETTINGS must follow
    EXPECT_TRUE(pending_throughout(t, frame(settings_type, 0, 0, 12)));
    EXPECT_FALSE(t.head_pending());
    EXPECT_EQ(t.unit(), 1u);  // one unit: preface and SETTINGS together
}

TEST(H2FrameTracker, ClientRoleOpensWithTheServersSettings) {
    frame_tracker t(false);
    EXPECT_TRUE(t.head_pending());
    feed(t, frame(settings_type, 0, 0, 0));
    EXPECT_FALSE(t.head_pending());
}

TEST(H2FrameTracker, HeaderBlockIsPendingAcrossContinuationsUntilEndHeaders) {
    frame_tracker t = opened_server();
    const auto before = t.unit();
    EXPECT_TRUE(pending_throughout(t, frame(headers_type, 0, 5, 20)));
    EXPECT_TRUE(t.head_pending());
    EXPECT_TRUE(t.header_block_open());
    EXPECT_EQ(t.header_block_stream(), 5);
    feed(t, frame(continuation_type, 0, 5, 10));
    EXPECT_TRUE(t.head_pending());
    feed(t, frame(continuation_type, end_headers, 5, 3));
    EXPECT_FALSE(t.head_pending());
    EXPECT_FALSE(t.header_block_open());
    EXPECT_EQ(t.unit(), before + 1);  // the block was one unit, its CONTINUATIONs included
}

TEST(H2FrameTracker, DataPayloadIsNotBoundButItsFrameHeaderIs) {
    frame_tracker t = opened_server();
    feed(t, frame(headers_type, end_headers, 1, 10));
    EXPECT_FALSE(t.head_pending());
    const bytes data = frame(data_type, 0, 1, 100);
    t.feed(data.data(), 4);
    EXPECT_TRUE(t.head_pending());  // frame header incomplete
    t.feed(data.data() + 4, 5 + 10);
    EXPECT_FALSE(t.head_pending());  // in the DATA payload
    t.feed(data.data() + 19, data.size() - 19);
    EXPECT_FALSE(t.head_pending());
}

TEST(H2FrameTracker, ControlFramesAreBoundWholeAndEachStartsAUnit) {
    frame_tracker t = opened_server();
    const auto before = t.unit();
    EXPECT_TRUE(pending_throughout(t, frame(ping_type, 0, 0, 8)));
    EXPECT_FALSE(t.head_pending());
    feed(t, frame(ping_type, 0, 0, 8));
    EXPECT_EQ(t.unit(), before + 2);
}

TEST(H2FrameTracker, ManyFramesInOneRead) {
    frame_tracker t(true);
    bytes all = preface();
    for (const bytes& f : {frame(settings_type, 0, 0, 6), frame(headers_type, end_headers, 1, 30),
                           frame(data_type, 0, 1, 50), frame(headers_type, 0, 3, 7)})
        all.insert(all.end(), f.begin(), f.end());
    feed(t, all);
    EXPECT_TRUE(t.head_pending());
    EXPECT_TRUE(t.header_block_open());
    EXPECT_EQ(t.header_block_stream(), 3);
    EXPECT_EQ(t.unit(), 4u);
}

TEST(H2FrameTracker, AnotherFrameInsideAHeaderBlockClosesIt) {
    frame_tracker t = opened_server();
    feed(t, frame(headers_type, 0, 1, 10));
    feed(t, frame(ping_type, 0, 0, 8));  // a protocol error nghttp2 ends the connection for
    EXPECT_FALSE(t.header_block_open());
    EXPECT_FALSE(t.head_pending());
}

}  // namespace
}  // namespace iron::h2
