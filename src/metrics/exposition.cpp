#include "metrics/exposition.hpp"

#include <charconv>
#include <cmath>

namespace iron::metrics {

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    // Counters are integers; print them without an exponent however large they get.
    if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {
        return std::to_string(static_cast<long long>(v));
    }
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, v);  // shortest form that round-trips
    return std::string(buf, res.ptr);
}

void exposition_writer::family(std::string_view name, std::string_view help, std::string_view type) {
    out_.append("# HELP ").append(name).append(" ");
    // HELP text escapes backslash and line feed (not quotes).
    for (char c : help) {
        if (c == '\\') out_ += "\\\\";
        else if (c == '\n') out_ += "\\n";
        else out_ += c;
    }
    out_.append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
}

void exposition_writer::sample_impl(std::string_view name, const label* begin, const label* end, const label* extra,
                                    double value) {
    out_.append(name);
    if (begin != end || extra) {
        out_ += '{';
        bool first = true;
        auto put = [&](const label& l) {
            if (!first) out_ += ',';
            first = false;
            out_.append(l.first).append("=\"").append(escape_label_value(l.second)).append("\"");
        };
        for (auto* l = begin; l != end; ++l) put(*l);
        if (extra) put(*extra);
        out_ += '}';
    }
    out_.append(" ").append(format_value(value)).append("\n");
}

void exposition_writer::sample(std::string_view name, std::initializer_list<label> labels, double value) {
    sample_impl(name, labels.begin(), labels.end(), nullptr, value);
}

void exposition_writer::sample(std::string_view name, const std::vector<label>& labels, double value) {
    sample_impl(name, labels.data(), labels.data() + labels.size(), nullptr, value);
}

void exposition_writer::histogram(std::string_view name, const histogram_snapshot& h,
                                  std::initializer_list<label> labels) {
    const std::string bucket = std::string(name) + "_bucket";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.counts.size(); ++i) {
        cumulative += h.counts[i];
        const std::string le = i < h.bounds.size() ? format_value(h.bounds[i]) : "+Inf";
        const label le_label{"le", le};
        sample_impl(bucket, labels.begin(), labels.end(), &le_label, static_cast<double>(cumulative));
    }
    sample_impl(std::string(name) + "_sum", labels.begin(), labels.end(), nullptr, h.sum);
    sample_impl(std::string(name) + "_count", labels.begin(), labels.end(), nullptr, static_cast<double>(cumulative));
}

}  // namespace iron::metrics
