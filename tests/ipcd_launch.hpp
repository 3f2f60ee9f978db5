// tests/ipcd_launch.hpp - start a real ipcd and wait until it is ready.
//
// Shared by the GoogleTest harness (daemon_harness.hpp) and the standalone
// chaos soak, so it uses no GoogleTest. Readiness is the daemon's own
// READY=1 on a notification socket of ours, never a sleep.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace ipcd_test {

inline int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

inline std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Runs argv (argv[0]: the ipcd binary) with stderr appended to `log` and
// $NOTIFY_SOCKET at `notify` (a path it binds), and waits up to 10 s for
// READY=1. The daemon dies with its parent (PR_SET_PDEATHSIG). Returns its
// pid; if it exits or stays silent, kills it and throws with its log.
inline pid_t launch_ipcd(std::vector<std::string> argv, const std::string& log, const std::string& notify) {
    const int nfd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", notify.c_str());
    if (nfd < 0 || ::bind(nfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw std::system_error(errno, std::generic_category(), "bind notify socket " + notify);
    std::vector<char*> args;  // built before fork: the child only execs
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork ipcd");
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // no orphaned daemons if the test is killed
        if (::getppid() != parent) ::_exit(97);
        const int lfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        ::dup2(lfd, 2);
        ::setenv("NOTIFY_SOCKET", notify.c_str(), 1);
        ::unsetenv("IPCD_SOCKET");
        ::unsetenv("LISTEN_FDS");
        ::unsetenv("LISTEN_PID");
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    // Ready when it says READY=1; failed if it exits first.
    const int pfd = pidfd_open(pid);
    pollfd p[2] = {{nfd, POLLIN, 0}, {pfd, POLLIN, 0}};
    const int r = ::poll(p, 2, 10000);
    char buf[512] = {};
    const ssize_t n = (r > 0 && (p[0].revents & POLLIN)) ? ::recv(nfd, buf, sizeof buf - 1, 0) : -1;
    ::close(nfd);
    if (pfd >= 0) ::close(pfd);
    if (n <= 0 || !std::strstr(buf, "READY=1")) {
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        throw std::runtime_error("ipcd did not become ready; its log:\n" + read_text(log));
    }
    return pid;
}

}  // namespace ipcd_test
