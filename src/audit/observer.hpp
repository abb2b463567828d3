#pragma once
// Something that watches every audit record the sink writes (the request metrics, the OTLP log
// exporter). audit/ knows only this interface; app/ hands the sink its observers, so audit/
// includes nothing that observes it.
#include <memory>
#include <vector>

namespace iron::audit {

struct record;

class record_observer {
public:
    virtual ~record_observer() = default;
    // Once per emitted record, on the emitting thread (any worker): must be thread-safe and cheap.
    virtual void on_record(const record& r) noexcept = 0;
};

// Several observers, each called in the order added.
class observer_list final : public record_observer {
public:
    void add(std::shared_ptr<record_observer> o) {
        if (o) list_.push_back(std::move(o));
    }
    void on_record(const record& r) noexcept override {
        for (const auto& o : list_) o->on_record(r);
    }

private:
    std::vector<std::shared_ptr<record_observer>> list_;
};

}  // namespace iron::audit
