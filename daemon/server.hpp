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
//                   SIGHUP: logged)
//
// Requests are served round-robin, at most `request_budget` per session per
// turn; a session with more waiting goes to the back of the ready queue and
// the loop polls the ring without sleeping until the queue is empty.
#pragma once

#include <cstdint>
#include <string>

#include "semaphore_table.hpp"

namespace ipcd {

struct Options {
    // Empty: $IPCD_SOCKET, else /run/ipcd/ipcd.sock as root, else
    // $XDG_RUNTIME_DIR/ipcd.sock. Ignored under socket activation.
    std::string socket_path;
    // Empty: persistent semaphores live only as long as the daemon.
    std::string state_file;
    Limits limits;
    // Upper bound of the adaptive spin over just-served sessions before
    // their futex waits are armed (0: never spin). See Server::spin_idle().
    unsigned spin_us = 50;
    bool verbose = false;
};

// Runs ipcd in the foreground until SIGTERM or SIGINT. Returns the process
// exit status: 0 after a clean stop, 1 if start-up failed (logged).
int run(const Options& options);

}  // namespace ipcd
