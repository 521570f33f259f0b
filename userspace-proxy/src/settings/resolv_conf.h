// The resolvers of a resolv.conf (its `nameserver` lines): the DNS
// listener's upstreams when dns-upstreams is not set. The redirect mode
// cannot tell a UDP query's resolver, and a query sent to the listener
// itself has none: the namespace's own resolvers answer them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shunt::proxy {

// As dns-upstreams entries ("10.0.0.10", "[fd00::10]"), in order; lines
// that are not a plain address (a scoped IPv6 one, say) are skipped.
std::vector<std::string> resolv_conf_nameservers(std::string_view text);

// The nameservers of the file at `path`; none when it cannot be read.
std::vector<std::string> read_resolv_conf(const std::string& path);

}  // namespace shunt::proxy
