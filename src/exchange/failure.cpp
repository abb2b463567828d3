#include "exchange/failure.hpp"

#include "audit/record.hpp"

namespace iron::exchange {

namespace act = audit::action;

settlement settle(const failure& f, bool response_started) {
    switch (f.kind) {
        case failure_kind::malformed: return {act::reject, 400, !response_started, nullptr};
        case failure_kind::not_implemented: return {act::reject, 501, !response_started, nullptr};
        case failure_kind::method_not_allowed: return {act::reject, 405, !response_started, nullptr};
        case failure_kind::head_timeout: return {act::reject, 408, false, nullptr};
        case failure_kind::body_timeout:
            if (response_started) break;
            return {act::reject, 408, true, "request timeout"};
        case failure_kind::gone:
            // A client that left before any response is recorded with Go's 200 (what the handler
            // would have answered); after, with the status it was sent.
            return {act::client_cancel, response_started ? 0 : 200, false, nullptr};
        case failure_kind::too_large: return {act::reject, 413, !response_started, "request body too large"};
        case failure_kind::loop: return {act::error, 508, !response_started, "loop detected"};
        case failure_kind::dial_failed: return {act::error, 502, !response_started, "bad gateway"};
        case failure_kind::response_timeout: return {act::error, 504, !response_started, "gateway timeout"};
        case failure_kind::response_too_large: return {act::error, 502, !response_started, "bad gateway"};
        case failure_kind::broken:
        case failure_kind::stale: break;
    }
    return {act::error, response_started ? 0 : 502, !response_started, "bad gateway"};
}

}  // namespace iron::exchange
