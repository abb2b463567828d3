#include "net/live_connections.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

namespace iron::net {

namespace {

ino_t inode_of(int fd) noexcept {
    struct stat st{};
    return fd >= 0 && ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

}  // namespace

live_connection::live_connection(live_connections* owner, int fd) noexcept : owner_(owner), fd_(fd) {
    if (!owner_) return;
    // One fstat per connection (not per request): without it a drain could shut down a socket
    // that merely inherited the number after this one was closed.
    inode_ = inode_of(fd_);
    owner_->add(*this);
    if (owner_->draining()) drain();  // accepted while the drain began
}

live_connection::~live_connection() {
    if (owner_) owner_->remove(*this);
}

bool live_connection::draining() const noexcept { return owner_ && owner_->draining(); }

void live_connection::on_drain(std::function<void()> f) {
    drain_action_ = std::move(f);
    if (drain_action_ && draining()) drain_action_();
}

void live_connection::close_client() noexcept {
    // Only this thread closes this connection's descriptor, so if the number still names the
    // same socket now, it does so for the shutdown call too.
    if (inode_ == 0 || inode_of(fd_) != inode_) return;
    ::shutdown(fd_, SHUT_RDWR);
}

void live_connection::drain() {
    if (drain_action_) {
        drain_action_();
        return;
    }
    // Busy connections close themselves once their work is done (the session checks draining()).
    if (idle()) close_client();
}

void live_connection::cut_now() {
    cut_ = true;
    close_client();
    if (hook_fn_) hook_fn_(hook_ctx_);
}

void live_connections::add(live_connection& c) noexcept {
    c.next_ = head_;
    if (head_) head_->prev_ = &c;
    head_ = &c;
    open_.fetch_add(1, std::memory_order_relaxed);
}

void live_connections::remove(live_connection& c) noexcept {
    if (c.prev_) c.prev_->next_ = c.next_;
    else head_ = c.next_;
    if (c.next_) c.next_->prev_ = c.prev_;
    c.prev_ = c.next_ = nullptr;
    open_.fetch_sub(1, std::memory_order_relaxed);
}

void live_connections::begin_drain() {
    if (draining_) return;
    draining_ = true;
    // Closing a socket or queueing a GOAWAY only schedules completions: no handler runs (and no
    // connection unregisters) inside this loop; `next` is read first all the same.
    for (live_connection* c = head_; c;) {
        live_connection* next = c->next_;
        c->drain();
        c = next;
    }
}

std::size_t live_connections::cut_all() {
    draining_ = true;
    cut_done_ = true;
    std::size_t n = 0;
    for (live_connection* c = head_; c;) {
        live_connection* next = c->next_;
        if (!c->cut_) {
            c->cut_now();
            ++n;
        }
        c = next;
    }
    return n;
}

}  // namespace iron::net
