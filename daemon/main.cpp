// daemon/main.cpp - ipcd's entry point: parses the command line, then runs.
#include <CLI/CLI.hpp>

#include "ipc/protocol.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
    ipcd::Options o;
    CLI::App app{"ipcd - the semaphore daemon: named counting semaphores for the processes of this machine, "
                 "served over a Unix socket and shared-memory rings.\n\n"
                 "Runs in the foreground and logs to stderr with syslog priority prefixes. SIGTERM or SIGINT "
                 "stops it (waiting clients are answered 'stopping'); SIGHUP re-reads the configuration file "
                 "(a bad file is refused and the running configuration kept). Supports systemd readiness "
                 "notification (Type=notify) and socket activation. Options given here win over the "
                 "configuration file's, on reload too.",
                 "ipcd"};
    app.add_option("-c,--config", o.config_path,
                   std::string("configuration file (TOML; default: ") + ipcd::default_config_path +
                       " if it exists, else built-in defaults; see docs/operations.md)")
        ->type_name("FILE");
    app.add_option("--socket", o.socket_path,
                   "Unix socket to listen on (default: the file's 'socket', else $IPCD_SOCKET, else "
                   "/run/ipcd/ipcd.sock as root, else $XDG_RUNTIME_DIR/ipcd.sock)")
        ->type_name("PATH");
    app.add_option("--state-dir", o.state_dir,
                   "directory for persistent semaphores, kept across restarts in DIR/semaphores.json (default: "
                   "the file's 'state_dir', else $STATE_DIRECTORY, else /var/lib/ipcd as root, else "
                   "$XDG_STATE_HOME/ipcd)")
        ->type_name("DIR");
    const auto range = CLI::Range(1u, 1u << 20);
    app.add_option("--max-sessions-per-user", o.sessions_per_user,
                   "sessions one uid may open (root: no limit; default: the file's, else 64)")
        ->check(range)
        ->type_name("N");
    app.add_option("--max-semaphores-per-user", o.semaphores_per_user,
                   "semaphores one uid may own (root: no limit; default: the file's, else 256)")
        ->check(range)
        ->type_name("N");
    app.add_option("--max-waits-per-user", o.waits_per_user,
                   "acquires of one uid that may wait at once (root: no limit; default: the file's, else 1024)")
        ->check(range)
        ->type_name("N");
    app.add_option("--spin", o.spin_us,
                   "microseconds to keep polling a session that just made a request before sleeping on it "
                   "(adaptive, up to this; 0 = never spin; default: the file's 'spin_us', else 50)")
        ->check(CLI::Range(0u, 10000u))
        ->type_name("USEC");
    app.add_flag("-v,--verbose", o.verbose, "log debug messages too");
    app.set_version_flag("--version", "ipcd " IPCD_VERSION " (protocol " + std::to_string(ipc::proto::version) + ")");
    CLI11_PARSE(app, argc, argv);
    return ipcd::run(o);
}
