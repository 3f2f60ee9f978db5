// tools/errors.hpp - ipcctl's exit codes and its error messages.
//
// The table below is the contract with scripts; docs/ipcctl.md and the man
// page (docs/ipcctl.1) print the same table. Every failure is reported once,
// on stderr, as one line "ipcctl: what went wrong: what to do".
//
//   code  meaning
//   0     success (acquire: the command's own exit status instead)
//   1     failure not listed below (a daemon limit, a refused request, an
//         invalid configuration on reload, a file that is not a channel, ...)
//   2     usage: unknown verb or option, malformed number, invalid name
//   3     not found: no semaphore, session or channel of that name (or the
//         semaphore was deleted while waiting)
//   4     permission denied (the semaphore's owner/mode, the socket's, root
//         only verbs, a channel's file mode)
//   5     timed out / would block: acquire got no permits in time
//         (acquire --conflict-exit-code changes it)
//   6     no daemon: cannot connect, the daemon went away or is stopping
//   7     exists: create of a name that is already taken
//   126   acquire: COMMAND found but could not be run
//   127   acquire: COMMAND not found
//   128+N acquire: COMMAND was killed by signal N
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace ipcctl {

enum Exit : int {
    exit_ok = 0,
    exit_failure = 1,
    exit_usage = 2,
    exit_not_found = 3,
    exit_permission = 4,
    exit_timeout = 5,
    exit_no_daemon = 6,
    exit_exists = 7,
    exit_cannot_run = 126,
    exit_command_not_found = 127,
    exit_signal_base = 128,
};

// What the failed call was about, for the message.
struct ErrorContext {
    std::string_view socket = {};     // the daemon socket path
    std::string_view semaphore = {};  // the semaphore's name, or empty
    std::string_view action = {};     // the verb: "create", "delete", "acquire", "stat", "list", "status",
                                 // "status --user", "sessions", "release-session", "reload"
    std::string_view session = {};    // release-session: the session id
    std::string_view user = {};       // status --user: the user asked about
};

// The exit code for an error from the client library (daemon answers in
// ipc::daemon_category(), transport errors as errno values).
Exit exit_code_for(const std::error_code& ec) noexcept;

// The one-line message (without the "ipcctl: " prefix) for that error.
std::string message_for(const std::error_code& ec, const ErrorContext& ctx);

}  // namespace ipcctl
