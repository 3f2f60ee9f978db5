// daemon/log.hpp - ipcd's log: one line per event on stderr, with a syslog
// priority prefix ("<3>ipcd: ...") that journald and sd-daemon(3) parse.
//
// Every failure is logged once, where it is handled, with its context
// ("session 7 (pid 123, uid 1000): ..."); callers never log and rethrow.
#pragma once

#include <cstdarg>

namespace ipcd::log {

enum Priority : int { err = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// Lines above `max` are dropped (default: info; --verbose: debug).
void set_max_priority(int max) noexcept;
bool enabled(int priority) noexcept;

// printf-style; the line is written with one write(2) so lines from
// several processes sharing stderr do not interleave.
[[gnu::format(printf, 2, 3)]] void line(int priority, const char* fmt, ...) noexcept;

}  // namespace ipcd::log
