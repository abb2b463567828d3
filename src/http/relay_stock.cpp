#include "http/relay_stock.hpp"

namespace iron::http {

namespace {

constexpr std::size_t relay_stock_max = 16;

std::vector<std::vector<char>>& relay_stock() {
    thread_local std::vector<std::vector<char>> stock;
    return stock;
}

}  // namespace

std::vector<char>& relay_loan::get() {
    if (!buffer_) {
        auto& stock = relay_stock();
        if (stock.empty()) {
            buffer_.emplace(relay_chunk_bytes);
        } else {
            buffer_.emplace(std::move(stock.back()));
            stock.pop_back();
        }
    }
    return *buffer_;
}

void relay_loan::give_back() {
    if (!buffer_) return;
    auto& stock = relay_stock();
    if (stock.size() < relay_stock_max) stock.push_back(std::move(*buffer_));
    buffer_.reset();
}

}  // namespace iron::http
