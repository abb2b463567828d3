#include "pipeline/ordering.hpp"

#include "core/log.hpp"

namespace iron::pipeline {

result<void> check_ordering(const std::vector<std::unique_ptr<const transform>>& built,
                            const std::vector<std::string>& where) {
    bool swapped = false, swapped_in_body = false;
    for (std::size_t i = 0; i < built.size(); ++i) {
        const ordering need = built[i]->ordering_needs();
        const std::string name(built[i]->name());
        const std::string at = i < where.size() ? where[i] : std::string();
        if (need.swaps_secrets || need.swaps_secrets_in_body) {
            swapped = true;
            swapped_in_body = swapped_in_body || need.swaps_secrets_in_body;
        } else if (need.must_see_body_before_secrets && swapped_in_body) {
            const std::string message = name + " must be placed before secrets with match_body: after it, "
                                               "the captured body would contain the real secret";
            return make_error(at.empty() ? message : at + ": " + message);
        } else if (need.must_run_before_secrets && swapped) {
            log::warn(name + " is placed after secrets: headers it records may hold real secrets", {{"where", at}});
        }
    }
    return ok();
}

}  // namespace iron::pipeline
