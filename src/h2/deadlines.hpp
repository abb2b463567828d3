#pragma once
// The time limits an HTTP/2 connection puts on its peer, kept apart from the nghttp2 driver:
//
// - the head deadline: the connection preface and the first frame (SETTINGS), every header
//   block (from the first byte of a HEADERS frame to the end of the frame carrying END_HEADERS,
//   across CONTINUATION frames) and every other frame except a DATA frame's payload must arrive
//   whole within it. nghttp2 buffers partial frames silently, so this is tracked on the raw bytes:
//   a peer dripping a frame one byte at a time never completes a unit and is cut at the deadline.
//   DATA payloads are exempt: they move at the pace of a body (slow uploads are legitimate and
//   flow control bounds them), and a stream's activity is not a header's business.
// - the idle deadline: how long the connection may stay with no open stream.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include <boost/asio/any_io_executor.hpp>

#include "net/watchdog.hpp"

namespace iron::h2 {

// Follows the peer's frames through their 9-byte headers (payloads are skipped, never copied).
class frame_tracker {
public:
    // `expect_preface`: the peer is a client, which starts with the 24-byte preface.
    explicit frame_tracker(bool expect_preface);

    void feed(const std::uint8_t* data, std::size_t size);

    // Something the head deadline bounds is incomplete: the opening (preface and first frame), a
    // header block, a frame header, or the payload of a frame other than DATA.
    bool head_pending() const;
    // Numbers the incomplete units: changes whenever a new one begins (each frame, except that a
    // header block's CONTINUATION frames belong to the block's unit).
    std::uint64_t unit() const { return unit_; }
    // A HEADERS or PUSH_PROMISE frame header arrived and the block's END_HEADERS frame has not
    // ended yet; `header_block_stream` is its stream.
    bool header_block_open() const { return block_open_; }
    std::int32_t header_block_stream() const { return block_stream_; }

private:
    void header_complete();
    void frame_complete();

    std::size_t preface_left_;
    bool opened_ = false;  // the first frame after the preface is complete
    std::array<std::uint8_t, 9> hd_{};
    std::size_t hd_have_ = 0;
    bool in_payload_ = false;
    std::size_t payload_left_ = 0;
    std::uint8_t type_ = 0;
    bool block_open_ = false;
    bool block_ends_ = false;  // the current frame of the open block carries END_HEADERS
    std::int32_t block_stream_ = 0;
    std::uint64_t unit_ = 1;  // unit 1: the opening
};

// The head and idle deadlines of one connection. Callbacks run on the connection's executor;
// a zero duration switches that deadline off.
class connection_deadlines {
public:
    using duration = std::chrono::steady_clock::duration;
    connection_deadlines(boost::asio::any_io_executor ex, bool expect_preface, duration head, duration idle,
                         std::function<void()> on_head_expired, std::function<void()> on_idle_expired);

    // After every read: the bytes the peer sent (followed only when the head deadline is on).
    void received(const std::uint8_t* data, std::size_t size);
    // Whenever the number of open streams changes.
    void streams_open(std::size_t count);

    const frame_tracker& frames() const { return frames_; }

private:
    frame_tracker frames_;
    duration head_;
    duration idle_;
    std::uint64_t armed_unit_ = 0;
    std::optional<net::watchdog> head_dog_;
    std::optional<net::watchdog> idle_dog_;
};

}  // namespace iron::h2
