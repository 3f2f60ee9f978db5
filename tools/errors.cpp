// tools/errors.cpp - ipcctl's exit codes and error messages (errors.hpp).
#include "errors.hpp"

#include <optional>

#include "ipc/semaphore.hpp"

namespace ipcctl {
namespace {

using ipc::proto::Result;

bool is_daemon(const std::error_code& ec) noexcept { return ec.category() == ipc::daemon_category(); }

Result result_of(const std::error_code& ec) noexcept { return static_cast<Result>(ec.value()); }

// The daemon cannot be reached at all (nothing listens, or not a socket).
bool is_no_daemon(const std::error_code& ec) noexcept {
    return ec == std::errc::connection_refused || ec == std::errc::no_such_file_or_directory ||
           ec == std::errc::not_a_socket || ec == std::errc::not_a_directory ||
           ec == std::errc::address_not_available;
}

// The daemon was reached but the connection broke.
bool is_lost(const std::error_code& ec) noexcept {
    return ec == std::errc::connection_reset || ec == std::errc::broken_pipe ||
           ec == std::errc::connection_aborted || ec == std::errc::not_connected;
}

std::string sem_label(const ErrorContext& ctx) {
    return ctx.semaphore.empty() ? std::string("the semaphore") : "semaphore " + std::string(ctx.semaphore);
}

}  // namespace

Exit exit_code_for(const std::error_code& ec) noexcept {
    if (!ec) return exit_ok;
    if (is_daemon(ec)) {
        switch (result_of(ec)) {
            case Result::ok: return exit_ok;
            case Result::not_found:
            case Result::deleted: return exit_not_found;
            case Result::exists: return exit_exists;
            case Result::permission_denied: return exit_permission;
            case Result::would_block:
            case Result::timed_out: return exit_timeout;
            case Result::stopping: return exit_no_daemon;
            default: return exit_failure;
        }
    }
    if (is_no_daemon(ec) || is_lost(ec)) return exit_no_daemon;
    if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted) return exit_permission;
    if (ec == std::errc::timed_out) return exit_timeout;
    return exit_failure;
}

namespace {

// Answers about the administrative verbs, which are not about a semaphore;
// nullopt to fall through to the general messages.
std::optional<std::string> admin_message(Result r, const ErrorContext& ctx) {
    const std::string sock(ctx.socket);
    const std::string action(ctx.action);
    if (r == Result::unknown_op)
        return "ipcd at " + sock + " does not know the '" + action +
               "' request: it is older than this ipcctl; upgrade ipcd, or use the ipcctl built with it";
    if (action == "release-session") {
        const std::string id(ctx.session);
        switch (r) {
            case Result::not_found: return "no session " + id + ": see 'ipcctl sessions' for the sessions there are";
            case Result::permission_denied:
                return "permission denied: only root may release a session; run it as root "
                       "(sudo ipcctl release-session " + id + ")";
            case Result::invalid_argument:
                return "cannot release session " + id + ": it is the session this ipcctl is using";
            default: return std::nullopt;
        }
    }
    if (action == "reload") {
        switch (r) {
            case Result::permission_denied:
                return "permission denied: only root may reload ipcd's configuration; run it as root "
                       "(sudo ipcctl reload)";
            case Result::bad_config:
                return "ipcd at " + sock + " kept its running configuration: the configuration file is invalid; "
                       "check ipcd's log for where and why (e.g. journalctl -u ipcd), fix the file and reload again";
            default: return std::nullopt;
        }
    }
    if ((action == "status" || action == "status --user") && r == Result::permission_denied)
        return "permission denied: only root may see the usage of another user" +
               (ctx.user.empty() ? std::string() : " (" + std::string(ctx.user) + ")") +
               "; run it as root, or leave out --user";
    if (action == "sessions" && r == Result::permission_denied)
        return "permission denied: ipcd does not let you list its sessions; run it as root";
    if (r == Result::declared)
        return sem_label(ctx) + " is declared in ipcd's configuration; remove it from /etc/ipcd/ipcd.conf and "
               "run 'ipcctl reload'";
    return std::nullopt;
}

}  // namespace

std::string message_for(const std::error_code& ec, const ErrorContext& ctx) {
    const std::string sock(ctx.socket);
    const std::string sem = sem_label(ctx);
    if (is_daemon(ec)) {
        if (auto m = admin_message(result_of(ec), ctx)) return *m;
        switch (result_of(ec)) {
            case Result::not_found:
                return "no " + sem + ": see 'ipcctl list' for the semaphores there are";
            case Result::exists:
                return sem + " exists already: delete it first, or use --exist-ok";
            case Result::permission_denied:
                if (ctx.action == "delete") return "permission denied for " + sem + ": only its owner or root may delete it";
                if (ctx.action == "create") return "permission denied creating " + sem + ": ask the administrator of ipcd";
                return "permission denied for " + sem + ": its owner and mode do not allow " +
                       (ctx.action == "acquire" ? std::string("you to acquire it (needs w)")
                                                : std::string("you to read it (needs r)")) +
                       "; ask its owner or root";
            case Result::would_block:
                return "no permits of " + sem + " are available now (--timeout 0): retry later or wait longer";
            case Result::timed_out:
                return "timed out waiting for permits of " + sem + ": retry, or raise --timeout";
            case Result::deleted:
                return sem + " was deleted while waiting for it";
            case Result::stopping:
                return "ipcd at " + sock + " is shutting down: retry once it is back";
            case Result::limit:
                return "a per-user limit of ipcd was reached (sessions, semaphores or pending waits): "
                       "close some, or ask the administrator to raise it";
            case Result::too_many:
                return "more permits requested than " + sem + " has: see 'ipcctl stat " + std::string(ctx.semaphore) +
                       "' for its permits";
            case Result::invalid_argument:
                return "ipcd refused the " + std::string(ctx.action) + " request as invalid (" + ec.message() +
                       "): check the arguments against 'ipcctl " + std::string(ctx.action) + " --help'";
            default:
                return std::string(ctx.action) + " " + sem + ": " +
                       ipc::proto::describe(result_of(ec)) + " (unexpected answer from ipcd)";
        }
    }
    if (is_no_daemon(ec)) return "no daemon at " + sock + ": is ipcd running? (or pass --socket, set $IPCD_SOCKET)";
    if (is_lost(ec)) return "lost the connection to ipcd at " + sock + ": the daemon went away; retry once it is back";
    if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted)
        return "permission denied connecting to " + sock + ": ask the administrator for access to the socket";
    if (ec == std::errc::protocol_error)
        return "ipcd at " + sock + " speaks another protocol version, or is not ipcd: use the ipcctl built with it";
    return std::string(ctx.action) + (ctx.semaphore.empty() ? "" : " " + std::string(ctx.semaphore)) + ": " +
           ec.message();
}

}  // namespace ipcctl
