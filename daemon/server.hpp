// daemon/server.hpp - ipcd's event loop: the listening socket, the sessions,
// and the one thread that owns all semaphore state.
//
// One thread waits on everything through one io_uring:
//
//   accept          multishot IORING_OP_ACCEPT on the listening socket
//   hang-up         one IORING_OP_POLL_ADD per session socket (POLLIN |
//                   POLLRDHUP | POLLHUP): the client never writes, so any
//                   event means it hung up or broke the protocol
//   doorbell        one IORING_OP_FUTEX_WAIT per idle session, on its
//                   request channel's not_empty futex (uring_futex.hpp)
//   time            the wait itself times out at the earliest acquire
//                   deadline (io_uring_submit_and_wait_timeout); nothing
//                   ticks while no acquire has a deadline
//   signals         IORING_OP_READ on a signalfd (SIGTERM, SIGINT: stop;
//                   SIGHUP: reload the configuration file)
//
// Requests are served round-robin, at most `request_budget` per session per
// turn; a session with more waiting goes to the back of the ready queue and
// the loop polls the ring without sleeping until the queue is empty.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "semaphore_table.hpp"

namespace ipcd {

// The command line. Everything but config_path and verbose can also come
// from the configuration file; a value given here wins over the file's (on
// reload too).
struct Options {
    // Empty: /etc/ipcd/ipcd.conf, which may be missing (built-in defaults).
    // Given: the file must exist.
    std::string config_path;
    // Empty: the file's `socket`, else $IPCD_SOCKET, else /run/ipcd/ipcd.sock
    // as root, else $XDG_RUNTIME_DIR/ipcd.sock. Ignored under socket
    // activation.
    std::string socket_path;
    // Empty: the file's `state_dir`, else $STATE_DIRECTORY (systemd's
    // StateDirectory=), else /var/lib/ipcd as root, else
    // $XDG_STATE_HOME/ipcd (~/.local/state/ipcd).
    std::string state_dir;
    std::optional<std::uint32_t> sessions_per_user;
    std::optional<std::uint32_t> semaphores_per_user;
    std::optional<std::uint32_t> waits_per_user;
    // Upper bound of the adaptive spin over just-served sessions before
    // their futex waits are armed (0: never spin; default 50). See
    // Server::spin_idle().
    std::optional<unsigned> spin_us;
    bool verbose = false;
};

inline constexpr const char* default_config_path = "/etc/ipcd/ipcd.conf";
inline constexpr unsigned default_spin_us = 50;

// Runs ipcd in the foreground until SIGTERM or SIGINT. Returns the process
// exit status: 0 after a clean stop, 1 if start-up failed (logged).
int run(const Options& options);

}  // namespace ipcd
