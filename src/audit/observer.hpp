#pragma once
// Something that watches every audit record the sink writes (the request metrics, today). audit/
// knows only this interface; app/ hands the sink its observer, so audit/ includes nothing that
// observes it.
namespace iron::audit {

struct record;

class record_observer {
public:
    virtual ~record_observer() = default;
    // Once per emitted record, on the emitting thread (any worker): must be thread-safe and cheap.
    virtual void on_record(const record& r) noexcept = 0;
};

}  // namespace iron::audit
