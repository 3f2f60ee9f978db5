// daemon/log.cpp - see log.hpp.
#include "log.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace ipcd::log {
namespace {
int max_priority = info;
}

void set_max_priority(int max) noexcept { max_priority = max; }
bool enabled(int priority) noexcept { return priority <= max_priority; }

void line(int priority, const char* fmt, ...) noexcept {
    if (!enabled(priority)) return;
    const int saved = errno;
    char buf[1024];
    int n = std::snprintf(buf, sizeof buf, "<%d>ipcd: ", priority);
    va_list ap;
    va_start(ap, fmt);
    const int m = std::vsnprintf(buf + n, sizeof buf - static_cast<std::size_t>(n) - 1, fmt, ap);
    va_end(ap);
    std::size_t len = static_cast<std::size_t>(n) + (m < 0 ? 0 : static_cast<std::size_t>(m));
    if (len > sizeof buf - 2) len = sizeof buf - 2;  // truncated: keep the newline
    buf[len++] = '\n';
    for (std::size_t off = 0; off < len;) {
        const ssize_t w = ::write(STDERR_FILENO, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += static_cast<std::size_t>(w);
    }
    errno = saved;
}

}  // namespace ipcd::log
