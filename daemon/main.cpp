// daemon/main.cpp - ipcd's entry point: parses the command line, then runs.
#include <CLI/CLI.hpp>

#include "ipc/protocol.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
    ipcd::Options o;
    CLI::App app{"ipcd - the semaphore daemon: named counting semaphores for the processes of this machine, "
                 "served over a Unix socket and shared-memory rings.\n\n"
                 "Runs in the foreground and logs to stderr with syslog priority prefixes. SIGTERM or SIGINT "
                 "stops it (waiting clients are answered 'stopping'); SIGHUP is logged. Supports systemd "
                 "readiness notification (Type=notify) and socket activation.",
                 "ipcd"};
    app.add_option("--socket", o.socket_path,
                   "Unix socket to listen on (default: $IPCD_SOCKET, else /run/ipcd/ipcd.sock as root, "
                   "else $XDG_RUNTIME_DIR/ipcd.sock)")
        ->type_name("PATH");
    app.add_option("--state", o.state_file,
                   "keep persistent semaphores in this file across restarts (default: none, they last until "
                   "ipcd stops)")
        ->type_name("FILE");
    app.add_option("--max-sessions-per-user", o.limits.sessions_per_user, "sessions one uid may open (root: no limit)")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1u << 20));
    app.add_option("--max-semaphores-per-user", o.limits.semaphores_per_user,
                   "semaphores one uid may own (root: no limit)")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1u << 20));
    app.add_option("--max-waits-per-user", o.limits.waits_per_user,
                   "acquires of one uid that may wait at once (root: no limit)")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1u << 20));
    app.add_option("--spin", o.spin_us,
                   "microseconds to keep polling a session that just made a request before sleeping on it "
                   "(adaptive, up to this; 0 = never spin)")
        ->capture_default_str()
        ->check(CLI::Range(0u, 10000u))
        ->type_name("USEC");
    app.add_flag("-v,--verbose", o.verbose, "log debug messages too");
    app.set_version_flag("--version", "ipcd " IPCD_VERSION " (protocol " + std::to_string(ipc::proto::version) + ")");
    CLI11_PARSE(app, argc, argv);
    return ipcd::run(o);
}
