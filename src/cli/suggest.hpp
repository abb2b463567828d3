#pragma once
// `iron-proxy allowlist suggest`: from the audit records of a profiled workload (warn mode, or any
// mode) to an allowlist that admits exactly what it did, as a YAML fragment that appends to a base
// config: `cat base.yaml suggested.yaml > enforce.yaml`.
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cli/audit_view.hpp"

namespace iron::cli {

struct suggest_options {
    std::size_t min_count = 1;    // hosts seen fewer times are left out (listed in a comment)
    bool collapse = false;        // fold siblings a.x, b.x, c.x into *.x ...
    std::size_t collapse_min = 3; // ... when at least this many were seen
};

struct host_seen {
    std::size_t count = 0;
    std::set<std::string> methods;
};

// Collects the hosts of audit records, then writes the suggestion.
class suggestion {
public:
    // Any record with a host counts (allowed, warned, rejected or failed: the workload tried it);
    // CONNECT / SOCKS5 handshakes, sni-only connections and requests inside tunnels alike.
    void add(const audit_view& record);
    std::size_t records() const { return records_; }

    // The YAML fragment: a top-level `transforms:` with one allowlist (groups whose every domain
    // entry was seen, then domains, then cidrs for IP literals), one comment per entry with its
    // request count and methods. `sources` names the inputs in the header comment.
    std::string yaml(const suggest_options& options, const std::string& sources) const;

private:
    std::map<std::string, host_seen> hosts_;  // policy host -> what was seen
    std::size_t records_ = 0;
};

}  // namespace iron::cli
