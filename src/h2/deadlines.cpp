#include "h2/deadlines.hpp"

#include <algorithm>

namespace iron::h2 {

namespace {

// RFC 9113 §4.1 and §6: the frame fields this needs.
constexpr std::size_t preface_bytes = 24;
constexpr std::uint8_t type_data = 0x0;
constexpr std::uint8_t type_headers = 0x1;
constexpr std::uint8_t type_push_promise = 0x5;
constexpr std::uint8_t type_continuation = 0x9;
constexpr std::uint8_t flag_end_headers = 0x4;

}  // namespace

// --- frame_tracker ---

frame_tracker::frame_tracker(bool expect_preface) : preface_left_(expect_preface ? preface_bytes : 0) {}

bool frame_tracker::head_pending() const {
    return preface_left_ > 0 || !opened_ || block_open_ || hd_have_ > 0 || (in_payload_ && type_ != type_data);
}

void frame_tracker::feed(const std::uint8_t* data, std::size_t size) {
    while (size > 0) {
        std::size_t take = 0;
        if (preface_left_ > 0) {
            take = std::min(size, preface_left_);
            preface_left_ -= take;
        } else if (in_payload_) {
            take = std::min(size, payload_left_);
            payload_left_ -= take;
            if (payload_left_ == 0) frame_complete();
        } else {
            if (hd_have_ == 0 && opened_ && !block_open_) ++unit_;  // a new frame: a new unit
            take = std::min(size, hd_.size() - hd_have_);
            std::copy_n(data, take, hd_.begin() + static_cast<std::ptrdiff_t>(hd_have_));
            hd_have_ += take;
            if (hd_have_ == hd_.size()) header_complete();
        }
        data += take;
        size -= take;
    }
}

void frame_tracker::header_complete() {
    hd_have_ = 0;
    payload_left_ = (std::size_t{hd_[0]} << 16) | (std::size_t{hd_[1]} << 8) | hd_[2];
    type_ = hd_[3];
    const bool end_headers = (hd_[4] & flag_end_headers) != 0;
    if (type_ == type_headers || type_ == type_push_promise) {
        block_open_ = true;
        block_ends_ = end_headers;
        block_stream_ = static_cast<std::int32_t>(((std::uint32_t{hd_[5]} & 0x7f) << 24) |
                                                  (std::uint32_t{hd_[6]} << 16) | (std::uint32_t{hd_[7]} << 8) | hd_[8]);
    } else if (type_ == type_continuation && block_open_) {
        block_ends_ = end_headers;
    } else {
        block_open_ = false;  // anything else inside a block is a protocol error nghttp2 ends the connection for
    }
    in_payload_ = true;
    if (payload_left_ == 0) frame_complete();
}

void frame_tracker::frame_complete() {
    in_payload_ = false;
    opened_ = true;
    if (block_open_ && block_ends_) block_open_ = false;
}

// --- connection_deadlines ---

connection_deadlines::connection_deadlines(boost::asio::any_io_executor ex, bool expect_preface, duration head,
                                           duration idle, std::function<void()> on_head_expired,
                                           std::function<void()> on_idle_expired)
    : frames_(expect_preface), head_(head), idle_(idle) {
    if (head_.count() > 0) {
        head_dog_.emplace(ex, std::move(on_head_expired));
        armed_unit_ = frames_.unit();
        head_dog_->expires_after(head_);  // the opening: preface and first frame
    }
    if (idle_.count() > 0) idle_dog_.emplace(ex, std::move(on_idle_expired));
}

void connection_deadlines::received(const std::uint8_t* data, std::size_t size) {
    if (!head_dog_) return;  // nothing to time (the client role: origins have their own deadlines)
    frames_.feed(data, size);
    if (!frames_.head_pending()) {
        head_dog_->disarm();
    } else if (frames_.unit() != armed_unit_) {
        // A unit that began in this read: its deadline counts from now. One still pending from
        // an earlier read keeps the deadline it got then, however many bytes trickle in.
        armed_unit_ = frames_.unit();
        head_dog_->expires_after(head_);
    }
}

void connection_deadlines::streams_open(std::size_t count) {
    if (!idle_dog_) return;
    if (count == 0)
        idle_dog_->expires_after(idle_);
    else
        idle_dog_->disarm();
}

}  // namespace iron::h2
