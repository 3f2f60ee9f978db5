// libipc/sys.hpp - small system-call helpers shared by libipc's sources.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

namespace ipc::detail {

// Owns one file descriptor.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    ~UniqueFd() { reset(); }
    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }
    explicit operator bool() const noexcept { return fd_ >= 0; }

private:
    int fd_ = -1;
};

// std::system_error from errno, with "what we tried" as context.
inline std::system_error errno_error(const std::string& what, int err = errno) {
    return {err, std::generic_category(), what};
}

// Retries a system call while it fails with EINTR.
template <class F>
auto retry_eintr(F&& f) {
    for (;;) {
        auto r = f();
        if (!(r < 0 && errno == EINTR)) return r;
    }
}

}  // namespace ipc::detail
