#include "net/live_connections.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>

using namespace iron::net;

namespace {

// A connected pair of stream sockets: `ours` plays the proxy's client socket, `peer` the client.
struct socket_pair {
    int ours = -1, peer = -1;
    socket_pair() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0) {
            ours = fds[0];
            peer = fds[1];
        }
    }
    ~socket_pair() {
        if (ours >= 0) ::close(ours);
        if (peer >= 0) ::close(peer);
    }
    // Whether the peer sees the end of the stream (our side was shut down) within a moment.
    bool peer_sees_eof() const {
        pollfd p{peer, POLLIN, 0};
        if (::poll(&p, 1, 200) != 1) return false;
        char c;
        return ::recv(peer, &c, 1, MSG_DONTWAIT) == 0;
    }
};

bool always(const void*) { return true; }
void count_calls(void* n) { ++*static_cast<int*>(n); }

}  // namespace

TEST(LiveConnections, CountsRegisteredConnections) {
    live_connections reg;
    socket_pair a, b;
    EXPECT_EQ(reg.open(), 0u);
    {
        live_connection ca(&reg, a.ours);
        std::optional<live_connection> cb;
        cb.emplace(&reg, b.ours);
        EXPECT_EQ(reg.open(), 2u);
        cb.reset();
        EXPECT_EQ(reg.open(), 1u);
    }
    EXPECT_EQ(reg.open(), 0u);
}

TEST(LiveConnections, DrainClosesIdleConnectionsOnly) {
    live_connections reg;
    socket_pair idle, busy, arriving;
    live_connection c_idle(&reg, idle.ours), c_busy(&reg, busy.ours), c_arriving(&reg, arriving.ours);
    live_connection::work_scope in_flight(&c_busy);
    c_arriving.watch_pending_input(&always, nullptr);  // part of a request head is here
    EXPECT_FALSE(c_idle.draining());
    reg.begin_drain();
    EXPECT_TRUE(c_idle.draining() && c_busy.draining());
    EXPECT_TRUE(idle.peer_sees_eof());
    EXPECT_FALSE(busy.peer_sees_eof());
    EXPECT_FALSE(arriving.peer_sees_eof());
    EXPECT_FALSE(c_busy.cut());
    EXPECT_FALSE(reg.cut_done());
}

TEST(LiveConnections, ConnectionAcceptedDuringDrainClosesAtOnce) {
    live_connections reg;
    reg.begin_drain();
    socket_pair late;
    live_connection c(&reg, late.ours);
    EXPECT_TRUE(late.peer_sees_eof());
}

TEST(LiveConnections, DrainActionReplacesTheDefault) {
    live_connections reg;
    socket_pair s;
    live_connection c(&reg, s.ours);
    int goaways = 0;
    c.on_drain([&] { ++goaways; });
    reg.begin_drain();
    EXPECT_EQ(goaways, 1);
    EXPECT_FALSE(s.peer_sees_eof());  // closing is the action's business (HTTP/2: after GOAWAY)
    c.on_drain([&] { ++goaways; });   // set while draining: runs at once
    EXPECT_EQ(goaways, 2);
}

TEST(LiveConnections, CutShutsEverythingAndRunsTheHook) {
    live_connections reg;
    socket_pair a, b;
    live_connection ca(&reg, a.ours), cb(&reg, b.ours);
    live_connection::work_scope busy_a(&ca), busy_b(&cb);
    int upstream_closed = 0;
    {
        live_connection::cut_hook gone(&ca, &count_calls, &upstream_closed);  // restored on scope exit
    }
    live_connection::cut_hook hook(&ca, &count_calls, &upstream_closed);
    reg.begin_drain();
    EXPECT_EQ(reg.cut_all(), 2u);
    EXPECT_TRUE(a.peer_sees_eof() && b.peer_sees_eof());
    EXPECT_EQ(upstream_closed, 1);
    EXPECT_TRUE(ca.cut() && cb.cut() && reg.cut_done());
    EXPECT_EQ(reg.cut_all(), 0u);  // each connection is cut once
}

TEST(LiveConnections, NeverShutsDownASocketThatReusedTheNumber) {
    live_connections reg;
    std::optional<socket_pair> first(std::in_place);
    const int number = first->ours;
    live_connection c(&reg, number);
    first.reset();  // the session closed its socket; the number is free again
    socket_pair second;  // most likely given the same number
    if (second.ours != number && second.peer != number) GTEST_SKIP() << "the number was not reused";
    const int victim_peer = second.ours == number ? second.peer : second.ours;
    reg.cut_all();
    pollfd p{victim_peer, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 100), 0) << "an unrelated socket was shut down";
}

TEST(LiveConnections, NullRegistryIsInert) {
    socket_pair s;
    live_connection c(nullptr, s.ours);
    live_connection::work_scope w(&c);
    live_connection::work_scope none(nullptr);
    live_connection::cut_hook h(nullptr, &count_calls, nullptr);
    EXPECT_FALSE(c.draining());
    EXPECT_FALSE(c.cut());
}
