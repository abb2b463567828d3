#include "mcp/filters.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/headers.hpp"
#include "mcp/jsonrpc.hpp"

namespace iron::mcp {
namespace {

std::string_view trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// Base of both filters: the server's allowed tools and the record the notes go to.
class answer_filter : public pipeline::response_filter {
public:
    answer_filter(std::shared_ptr<const policy> p, const server& srv, std::shared_ptr<mcp_record> rec)
        : policy_(std::move(p)), server_(srv), record_(std::move(rec)) {}
    bool rewrites_body() const override { return true; }
    void rewrite_text(std::string& text) override { (void)text; }
    void annotate(audit::trace& own_trace) const override { (void)own_trace; }  // the record is its own group

protected:
    // Filters one JSON document (an answer, or an event's data); true with `out` set when it
    // changed. Every message in it gets an entry in the record.
    bool filter_document(std::string_view text, std::string& out) {
        boost::system::error_code ec;
        boost::json::value doc = boost::json::parse(text, ec);
        if (ec) return false;
        std::vector<answer_note> notes;
        const std::size_t removed = filter_answer(doc, record_->tools_list_ids(), server_, notes);
        for (const auto& n : notes) {
            auto entry = message_entry("response", n.method, {}, n.filtered > 0 ? "filtered" : "allow");
            if (n.filtered > 0) entry["filtered"] = n.filtered;
            record_->add(std::move(entry));
            if (n.tools_list) ++answered_;
        }
        if (removed == 0) return false;
        out = boost::json::serialize(doc);
        return true;
    }
    // Every tools/list id had its (filtered) answer: nothing left to rewrite.
    bool all_answered() const { return answered_ >= record_->tools_list_ids().size(); }

    std::shared_ptr<const policy> policy_;
    const server& server_;
    std::shared_ptr<mcp_record> record_;
    std::size_t answered_ = 0;
};

class json_filter final : public answer_filter {
public:
    using answer_filter::answer_filter;

    void feed(std::string_view in, std::string& out) override {
        if (passing_) {
            out.append(in);
            return;
        }
        if (held_.size() + in.size() > max_held_bytes) {
            record_->note_not_filtered("too_large");
            passing_ = true;
            out.append(held_);
            out.append(in);
            held_.clear();
            return;
        }
        held_.append(in);
    }

    void finish(std::string& out) override {
        if (passing_) return;
        std::string rewritten;
        if (trim(held_).empty()) {
            out.append(held_);
        } else if (filter_document(held_, rewritten)) {
            out.append(rewritten);
        } else {
            out.append(held_);
        }
        held_.clear();
    }

private:
    std::string held_;
    bool passing_ = false;
};

// Server-sent events: lines end in CRLF, LF or CR; a blank line ends an event.
class event_stream_filter final : public answer_filter {
public:
    using answer_filter::answer_filter;

    void feed(std::string_view in, std::string& out) override {
        if (passing_) {
            out.append(in);
            return;
        }
        pending_.append(in);
        drain(out, false);
        if (!passing_ && pending_.size() > max_held_bytes) {
            record_->note_not_filtered("event_too_large");
            pass_rest(out);
        }
    }

    void finish(std::string& out) override {
        if (passing_) return;
        drain(out, true);
        if (!pending_.empty()) emit_event(pending_, out);  // the stream ended inside an event
        pending_.clear();
    }

private:
    // Emits every complete event held; `at_end`: a CR as the last byte ends its line.
    void drain(std::string& out, bool at_end) {
        std::size_t event_start = 0;
        std::size_t line_start = scan_;
        while (line_start < pending_.size()) {
            const std::size_t eol = pending_.find_first_of("\r\n", line_start);
            if (eol == std::string::npos) break;
            std::size_t next = eol + 1;
            if (pending_[eol] == '\r') {
                if (next == pending_.size() && !at_end) break;  // CR LF may be split across pieces
                if (next < pending_.size() && pending_[next] == '\n') ++next;
            }
            const bool blank = eol == line_start;
            line_start = next;
            if (!blank) continue;
            emit_event(std::string_view(pending_).substr(event_start, next - event_start), out);
            event_start = next;
            if (all_answered()) {
                pending_.erase(0, event_start);
                scan_ = 0;
                pass_rest(out);
                return;
            }
        }
        pending_.erase(0, event_start);
        scan_ = line_start - event_start;
    }

    void pass_rest(std::string& out) {
        passing_ = true;
        out.append(pending_);
        pending_.clear();
    }

    // One whole event (its terminating blank line included).
    void emit_event(std::string_view event, std::string& out) {
        std::string data, others;
        bool has_data = false;
        for (std::size_t pos = 0; pos < event.size();) {
            std::size_t eol = event.find_first_of("\r\n", pos);
            std::size_t next = eol == std::string_view::npos ? event.size() : eol + 1;
            if (eol != std::string_view::npos && event[eol] == '\r' && next < event.size() && event[next] == '\n') ++next;
            const std::string_view line = event.substr(pos, (eol == std::string_view::npos ? event.size() : eol) - pos);
            const std::string_view whole = event.substr(pos, next - pos);
            pos = next;
            if (line.empty()) continue;
            if (line.substr(0, 5) == "data:" || line == "data") {
                std::string_view v = line.size() > 5 ? line.substr(5) : std::string_view();
                if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
                if (has_data) data += '\n';
                data.append(v);
                has_data = true;
            } else {
                others.append(whole);
                if (whole.back() != '\n' && whole.back() != '\r') others += '\n';
            }
        }
        const std::string_view payload = trim(data);
        std::string rewritten;
        if (!has_data || payload.empty() || (payload.front() != '{' && payload.front() != '[') ||
            !filter_document(payload, rewritten)) {
            out.append(event);
            return;
        }
        out.append(others);
        out.append("data: ");
        out.append(rewritten);
        out.append("\n\n");
    }

    std::string pending_;
    std::size_t scan_ = 0;  // where the next line starts in pending_ (earlier lines were read)
    bool passing_ = false;
};

}  // namespace

answer_kind answer_kind_of(std::string_view content_type) {
    std::string_view media = content_type.substr(0, content_type.find(';'));
    media = trim(media);
    if (core::iequals(media, "application/json")) return answer_kind::json;
    if (core::iequals(media, "text/event-stream")) return answer_kind::event_stream;
    return answer_kind::other;
}

std::unique_ptr<pipeline::response_filter> make_answer_filter(answer_kind kind, std::shared_ptr<const policy> p,
                                                              const server& srv, std::shared_ptr<mcp_record> rec) {
    switch (kind) {
        case answer_kind::json: return std::make_unique<json_filter>(std::move(p), srv, std::move(rec));
        case answer_kind::event_stream: return std::make_unique<event_stream_filter>(std::move(p), srv, std::move(rec));
        case answer_kind::other: break;
    }
    return nullptr;
}

}  // namespace iron::mcp
