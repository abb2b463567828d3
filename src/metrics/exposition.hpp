#pragma once
// Prometheus text exposition format 0.0.4: the writer every /metrics family goes through, so
// escaping and number formatting live in one place. No registry, no allocation per sample beyond
// the output string.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iron::metrics {

inline constexpr const char* exposition_content_type = "text/plain; version=0.0.4; charset=utf-8";

using label = std::pair<std::string_view, std::string_view>;  // name, value

// Escapes a label value: backslash, double quote and line feed (the only escapes 0.0.4 defines).
std::string escape_label_value(std::string_view v);
// "1", "0.25", "+Inf", "NaN": integers without a fraction, others shortest round-trip.
std::string format_value(double v);

// A histogram as recorded: `counts[i]` observations fell in (bounds[i-1], bounds[i]]; the last
// entry of `counts` (one more than `bounds`) is everything above the last bound.
struct histogram_snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> counts;
    double sum = 0;
};

class exposition_writer {
public:
    // Starts a metric family: "# HELP" and "# TYPE" lines. `type`: counter | gauge | histogram.
    void family(std::string_view name, std::string_view help, std::string_view type);
    void sample(std::string_view name, std::initializer_list<label> labels, double value);
    void sample(std::string_view name, const std::vector<label>& labels, double value);
    // _bucket (cumulative, ending with le="+Inf"), _sum and _count of one histogram; `labels`
    // are added to every sample.
    void histogram(std::string_view name, const histogram_snapshot& h, std::initializer_list<label> labels = {});

    const std::string& text() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    void sample_impl(std::string_view name, const label* begin, const label* end, const label* extra, double value);
    std::string out_;
};

}  // namespace iron::metrics
