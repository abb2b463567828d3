#include "app/drain.hpp"

#include <atomic>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/log.hpp"

namespace iron::app {

namespace asio = boost::asio;

namespace {

using clock = std::chrono::steady_clock;

// How often the main thread looks at the workers' connection counts (relaxed atomics).
constexpr auto poll_every = std::chrono::milliseconds(10);
// After a cut, how long the cut exchanges get to write their records before the loops stop. A
// cut shuts the sockets down, so they end within a turn or two; this only bounds a stuck one
// (whose record is then written as its frame is destroyed).
constexpr auto cut_grace = std::chrono::seconds(1);

// What the workers report back; shared with the handlers posted to them, which may outlive the
// drainer if a loop stops first.
struct progress {
    std::atomic<std::size_t> began{0};  // workers that closed their listeners and began draining
    std::atomic<std::size_t> cut_done{0};
    std::atomic<std::size_t> cut{0};
};

class drainer {
public:
    drainer(const std::vector<drain_worker>& workers, asio::io_context& signals_ctx, asio::signal_set& signals,
            std::chrono::nanoseconds timeout)
        : workers_(workers), signals_ctx_(signals_ctx), signals_(signals), timer_(signals_ctx),
          deadline_(clock::now() + std::chrono::duration_cast<clock::duration>(timeout)) {}

    drain_result run() {
        for (const auto& w : workers_) {
            asio::post(*w.ioc, [w, p = progress_] {
                boost::system::error_code ignored;
                for (auto& acc : *w.acceptors) acc->close(ignored);  // new connections are refused
                w.connections->begin_drain();
                p->began.fetch_add(1);
            });
        }
        wait_signal();
        tick();
        signals_ctx_.restart();
        signals_ctx_.run();
        result_.cut = progress_->cut.load();
        return result_;
    }

private:
    enum class phase { draining, cutting, done };

    std::size_t open_connections() const {
        std::size_t n = 0;
        for (const auto& w : workers_) n += w.connections->open();
        return n;
    }

    void tick() {
        const auto now = clock::now();
        const bool all = (phase_ == phase::draining ? progress_->began.load() : progress_->cut_done.load()) ==
                         workers_.size();
        if (all && open_connections() == 0) return finish();
        if (phase_ == phase::cutting && now >= cut_deadline_) return finish();
        if (phase_ == phase::draining && now >= deadline_) {
            log::warn("shutdown timeout: cutting what is still open", {{"connections", open_connections()}});
            start_cut();
        }
        timer_.expires_after(poll_every);
        timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec && phase_ != phase::done) tick();
        });
    }

    void wait_signal() {
        signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
            if (ec || phase_ == phase::done) return;
            if (phase_ == phase::cutting) return finish();  // a third one: stop waiting for records
            result_.second_signal = sig;
            log::warn("second signal: cutting what is still open",
                      {{"signal", sig}, {"connections", open_connections()}});
            start_cut();
            wait_signal();
        });
    }

    void start_cut() {
        phase_ = phase::cutting;
        cut_deadline_ = clock::now() + cut_grace;
        for (const auto& w : workers_) {
            asio::post(*w.ioc, [w, p = progress_] {
                p->cut.fetch_add(w.connections->cut_all());
                p->cut_done.fetch_add(1);
            });
        }
    }

    void finish() {
        phase_ = phase::done;
        timer_.cancel();
        signals_.cancel();
    }

    const std::vector<drain_worker>& workers_;
    asio::io_context& signals_ctx_;
    asio::signal_set& signals_;
    asio::steady_timer timer_;
    const clock::time_point deadline_;
    clock::time_point cut_deadline_{};
    phase phase_ = phase::draining;
    std::shared_ptr<progress> progress_ = std::make_shared<progress>();
    drain_result result_;
};

}  // namespace

drain_result drain(const std::vector<drain_worker>& workers, asio::io_context& signals_ctx,
                   asio::signal_set& signals, std::chrono::nanoseconds timeout) {
    drainer d(workers, signals_ctx, signals, timeout);
    return d.run();
}

}  // namespace iron::app
