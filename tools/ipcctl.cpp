// tools/ipcctl.cpp - ipcctl, the command-line tool of ipcd.
//
//   ipcctl [--socket PATH] [--json] VERB [ARGS...]
//
// Verbs: status, list, stat, create, delete, acquire, sessions,
// release-session, reload (the daemon), and channels, channel stat, channel
// rm (named channels in /dev/shm, no daemon needed). docs/ipcctl.md and the
// man page ipcctl(1) describe each. Every verb gathers plain data through the
// client API (ipc/semaphore.hpp, ipc/inspect.hpp) and hands it to render.hpp,
// which draws a human table or JSON; errors go to stderr, one line each, and
// map to the exit codes of errors.hpp.
//
// `acquire` works like flock(1): it takes the permits, then runs COMMAND with
// the session socket inherited (FD_CLOEXEC cleared), so the permits stay held
// until the command and everything it started that still holds the socket
// have exited, even if ipcctl itself is killed. ipcctl waits for the command,
// forwards the termination signals it receives to it, and exits with its
// status.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <CLI/CLI.hpp>

#include "errors.hpp"
#include "ipc/inspect.hpp"
#include "ipc/semaphore.hpp"
#include "parse.hpp"
#include "render.hpp"

extern char** environ;

namespace ipcctl {
namespace {

using namespace std::chrono;

// Options that apply to every verb.
struct Global {
    std::string socket;  // --socket; empty: Session::default_socket_path()
    bool json = false;   // --json
};

struct ListArgs {
    bool noheadings = false;
    std::string output;
};

struct StatusArgs {
    std::optional<std::string> user;  // --user NAME|UID
};

struct ChannelArgs {
    std::string name;
    bool force = false;  // channel rm
};

struct CreateArgs {
    std::string name;
    std::string permits;
    std::string mode = "0600";
    bool persist = false;
    bool exist_ok = false;
};

struct DeleteArgs {
    std::string name;
    bool force = false;
};

struct AcquireArgs {
    std::string name;
    std::string count = "1";
    std::string timeout;
    bool nonblock = false;
    std::string conflict_exit_code;
    bool no_inherit = false;
    bool verbose = false;
    std::vector<std::string> command;
};

// --- output ------------------------------------------------------------------

void print(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

// Strings from outside (command names, file names) need not be UTF-8: such
// bytes come out as U+FFFD rather than failing the dump.
void print_json(const nlohmann::ordered_json& j) {
    print(j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
}

int fail(const std::string& message, int code) {
    std::fprintf(stderr, "ipcctl: %s\n", message.c_str());
    return code;
}

int fail(const std::error_code& ec, const ErrorContext& ctx) {
    return fail(message_for(ec, ctx), exit_code_for(ec));
}

std::string socket_path(const Global& g) { return g.socket.empty() ? ipc::Session::default_socket_path() : g.socket; }

std::string permits_word(std::uint32_t n) { return std::to_string(n) + (n == 1 ? " permit" : " permits"); }

// --- status, list, stat --------------------------------------------------------

int cmd_status(const Global& g, const StatusArgs& a) {
    std::optional<uid_t> uid;
    if (a.user) uid = parse_user(*a.user);
    const std::string sock = socket_path(g);
    try {
        auto session = ipc::Session::connect(sock);
        const ipc::DaemonStatus st = session->status();
        std::optional<ipc::UsageInfo> usage;
        try {
            usage = session->usage(uid);
        } catch (const std::system_error& e) {
            // A daemon older than Op::usage: show what it does tell, unless
            // the usage was what was asked for.
            if (uid) return fail(e.code(), {sock, {}, "status --user", {}, *a.user});
            if (e.code() != ipc::proto::Result::unknown_op) throw;
        }
        const Context ctx = Context::system();
        if (g.json)
            print_json(status_json(st, sock, ctx, usage));
        else
            print(status_text(st, sock, ctx, usage));
        return exit_ok;
    } catch (const std::system_error& e) {
        return fail(e.code(), {sock, {}, "status", {}, a.user.value_or("")});
    }
}

// --- sessions, release-session, reload -------------------------------------------

int cmd_sessions(const Global& g, bool noheadings) {
    const std::string sock = socket_path(g);
    try {
        auto session = ipc::Session::connect(sock);
        const auto list = session->sessions();
        if (g.json)
            print_json(sessions_json(list, session->id(), Context::system()));
        else
            print(sessions_text(list, !noheadings));
        return exit_ok;
    } catch (const std::system_error& e) {
        return fail(e.code(), {sock, {}, "sessions"});
    }
}

int cmd_release_session(const Global& g, const std::string& id_arg) {
    const std::uint32_t id = parse_session_id(id_arg);
    const std::string sock = socket_path(g);
    const std::string id_text = std::to_string(id);
    try {
        auto session = ipc::Session::connect(sock);
        // Who it was, for the report; the release itself decides whether
        // there is such a session.
        std::optional<ipc::SessionInfo> who;
        try {
            for (auto& s : session->sessions())
                if (s.id == id) who = std::move(s);
        } catch (const std::system_error&) {
        }
        const ipc::ReleaseResult r = session->release_session(id);
        if (g.json)
            print_json(release_json(id, r));
        else
            print(release_text(id, r, who ? &*who : nullptr));
        return exit_ok;
    } catch (const std::system_error& e) {
        return fail(e.code(), {sock, {}, "release-session", id_text});
    }
}

int cmd_reload(const Global& g) {
    const std::string sock = socket_path(g);
    try {
        auto session = ipc::Session::connect(sock);
        const std::uint32_t declared = session->reload();
        if (g.json)
            print_json(reload_json(declared));
        else
            print(reload_text(declared));
        return exit_ok;
    } catch (const std::system_error& e) {
        return fail(e.code(), {sock, {}, "reload"});
    }
}

// --- channels ------------------------------------------------------------------------

int cmd_channels(const Global& g, bool noheadings) {
    std::vector<ipc::ChannelEntry> list;
    try {
        list = ipc::list_named_channels();
    } catch (const std::system_error& e) {
        // Not exit_code_for(): a missing /dev/shm is no missing daemon.
        const bool denied = e.code() == std::errc::permission_denied;
        return fail(std::string("cannot list channels: ") + e.what() +
                        (denied ? "; ask the administrator for read access to /dev/shm" : ""),
                    denied ? exit_permission : exit_failure);
    }
    const Context ctx = Context::system();
    if (g.json)
        print_json(channels_json(list, ctx));
    else
        print(channels_text(list, !noheadings, ctx));
    return exit_ok;
}

int cmd_channel_stat(const Global& g, const ChannelArgs& a) {
    const std::string name = parse_channel_name(a.name);
    const std::string path = ipc::Channel::shm_path(name);
    ipc::ChannelEntry e;
    try {
        e = ipc::inspect_named_channel(name);
    } catch (const std::system_error& ex) {
        if (ex.code() == std::errc::no_such_file_or_directory)
            return fail("no channel " + name + " (" + path + "): see 'ipcctl channels' for the channels there are",
                        exit_not_found);
        return fail("channel " + name + ": " + ex.what(), exit_failure);
    }
    if (e.error == std::errc::permission_denied || e.error == std::errc::operation_not_permitted)
        return fail("permission denied reading channel " + name + " (" + path +
                        "): its mode does not let you read it; run as its owner or root",
                    exit_permission);
    const Context ctx = Context::system();
    if (g.json)
        print_json(channel_json(e, true, ctx));
    else
        print(channel_stat_text(e, ctx));
    if (!e.valid())
        return fail(path + " is not a usable channel: " + e.problem + "; if nothing uses it, remove it with "
                        "'ipcctl channel rm " + name + "'",
                    exit_failure);
    return exit_ok;
}

int cmd_channel_rm(const ChannelArgs& a) {
    const std::string name = parse_channel_name(a.name);
    const std::string path = ipc::Channel::shm_path(name);
    try {
        if (!ipc::Channel::remove(name) && !a.force)
            return fail("no channel " + name + " (" + path + "): see 'ipcctl channels' for the channels there are",
                        exit_not_found);
        return exit_ok;
    } catch (const std::system_error& e) {
        if (e.code() == std::errc::permission_denied || e.code() == std::errc::operation_not_permitted)
            return fail("permission denied removing channel " + name + " (" + path +
                            "): only its owner or root may remove it",
                        exit_permission);
        return fail("cannot remove channel " + name + " (" + path + "): " + e.code().message(), exit_failure);
    }
}

int cmd_list(const Global& g, const ListArgs& a) {
    const auto columns = a.output.empty() ? list_columns() : parse_columns(a.output);
    const std::string sock = socket_path(g);
    try {
        auto session = ipc::Session::connect(sock);
        // The daemon's list has names, permits and available; a stat of each
        // adds the rest where we may read it.
        std::vector<ListEntry> sems;
        for (ipc::SemaphoreInfo& summary : session->list()) {
            try {
                sems.push_back({session->stat(summary.name, false), true});
            } catch (const std::system_error& e) {
                if (e.code() == ipc::proto::Result::not_found) continue;  // deleted since the list
                if (e.code() != ipc::proto::Result::permission_denied) throw;
                sems.push_back({std::move(summary), false});
            }
        }
        const Context ctx = Context::system();
        if (g.json)
            print_json(list_json(sems, ctx));
        else
            print(list_text(sems, columns, !a.noheadings, ctx));
        return exit_ok;
    } catch (const std::system_error& e) {
        return fail(e.code(), {sock, {}, "list"});
    }
}

int cmd_stat(const Global& g, const std::string& name_arg) {
    const std::string name = parse_name(name_arg);
    const std::string sock = socket_path(g);
    try {
        auto session = ipc::Session::connect(sock);
        const ipc::SemaphoreInfo info = session->stat(name, true);
        const Context ctx = Context::system();
        if (g.json)
            print_json(semaphore_json(info, true, ctx));
        else
            print(stat_text(info, ctx));
        return exit_ok;
    } catch (const std::system_error& e) {
        return fail(e.code(), {sock, name, "stat"});
    }
}

// --- create, delete ------------------------------------------------------------

int cmd_create(const Global& g, const CreateArgs& a) {
    const std::string name = parse_name(a.name);
    const std::uint32_t permits = parse_count(a.permits, "--permits");
    const mode_t mode = parse_mode(a.mode);
    const std::string sock = socket_path(g);
    try {
        auto session = ipc::Session::connect(sock);
        try {
            (void)ipc::Semaphore::create(session, name, permits, mode, a.persist);
        } catch (const std::system_error& e) {
            if (!(a.exist_ok && e.code() == ipc::proto::Result::exists)) throw;
        }
        return exit_ok;
    } catch (const std::system_error& e) {
        return fail(e.code(), {sock, name, "create"});
    }
}

int cmd_delete(const Global& g, const DeleteArgs& a) {
    const std::string name = parse_name(a.name);
    const std::string sock = socket_path(g);
    try {
        auto session = ipc::Session::connect(sock);
        try {
            ipc::Semaphore::remove(*session, name);
        } catch (const std::system_error& e) {
            if (!(a.force && e.code() == ipc::proto::Result::not_found)) throw;
        }
        return exit_ok;
    } catch (const std::system_error& e) {
        return fail(e.code(), {sock, name, "delete"});
    }
}

// --- acquire -------------------------------------------------------------------

// The command's pid, for the forwarding handler; 0 until it runs. A signal
// that arrives before is parked in g_pending and sent once the pid is known.
std::atomic<pid_t> g_child{0};
std::atomic<int> g_pending{0};
static_assert(std::atomic<pid_t>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "used from a signal handler");

// The signals ipcctl passes on to the command, so that `kill ipcctl` (or a
// supervisor stopping it) reaches the command as it would without ipcctl.
constexpr int forwarded_signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

extern "C" void forward_signal(int sig, siginfo_t* info, void*) {
    // A signal from the terminal (Ctrl-C, Ctrl-\, hangup) went to the whole
    // foreground process group, the command included: do not send it twice.
    if (info != nullptr && info->si_code == SI_KERNEL) return;
    const int saved = errno;
    pid_t child = g_child.load();
    if (child > 0) {
        (void)kill(child, sig);
    } else {
        // Park it, then look again: either we now see the pid (and whoever
        // takes the parked signal sends it), or publish_child() stores the pid
        // after our store and takes it (seq_cst orders the four accesses).
        g_pending.store(sig);
        child = g_child.load();
        if (child > 0 && g_pending.exchange(0) != 0) (void)kill(child, sig);
    }
    errno = saved;
}

// Installed before the command starts, so no signal in between kills
// ipcctl and leaves the command running unsupervised.
void install_forwarding() {
    struct sigaction sa {};
    sa.sa_sigaction = forward_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int sig : forwarded_signals) {
        struct sigaction old {};
        if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;  // keep nohup's choice
        (void)sigaction(sig, &sa, nullptr);
    }
}

void publish_child(pid_t child) {
    g_child.store(child);
    if (const int sig = g_pending.exchange(0); sig != 0) (void)kill(child, sig);
}

// environ with NAME=VALUE pairs set or replaced (value nullopt: removed).
std::vector<std::string> command_environment(
    const std::vector<std::pair<std::string, std::optional<std::string>>>& changes) {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string_view entry(*e);
        const auto key = entry.substr(0, entry.find('='));
        bool replaced = false;
        for (const auto& [k, v] : changes) replaced = replaced || key == k;
        if (!replaced) env.emplace_back(entry);
    }
    for (const auto& [k, v] : changes)
        if (v) env.push_back(k + "=" + *v);
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

// How the command ended: its exit status (128+N for signal N), or that it
// never started (status 126/127 then, like env(1) and timeout(1)).
struct CommandResult {
    int status;
    bool started;
};

// Runs `argv` with `env`, forwarding termination signals, and waits for it.
CommandResult run_command(std::vector<std::string> argv, std::vector<std::string> env) {
    auto c_argv = c_strings(argv);
    auto c_env = c_strings(env);
    std::fflush(stdout);
    std::fflush(stderr);
    // exec resets the handlers to the default; ignored signals stay ignored.
    install_forwarding();
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, c_argv[0], nullptr, nullptr, c_argv.data(), c_env.data());
    if (rc == ENOENT) return {fail(argv[0] + ": command not found", exit_command_not_found), false};
    if (rc != 0) return {fail("cannot run " + argv[0] + ": " + std::strerror(rc), exit_cannot_run), false};
    publish_child(pid);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return {fail(std::string("waiting for the command: ") + std::strerror(errno), exit_failure), true};
    }
    if (WIFEXITED(status)) return {WEXITSTATUS(status), true};
    if (WIFSIGNALED(status)) return {exit_signal_base + WTERMSIG(status), true};
    return {exit_failure, true};
}

int cmd_acquire(const Global& g, const AcquireArgs& a) {
    const std::string name = parse_name(a.name);
    const std::uint32_t count = parse_count(a.count, "--count");
    std::optional<nanoseconds> timeout;
    if (!a.timeout.empty()) timeout = parse_timeout(a.timeout);
    if (a.nonblock && timeout) throw UsageError("--nonblock and --timeout exclude each other");
    if (a.nonblock) timeout = nanoseconds::zero();
    const int conflict_code = a.conflict_exit_code.empty()
                                  ? exit_timeout
                                  : static_cast<int>(parse_uint(a.conflict_exit_code, "--conflict-exit-code", 0, 255));
    if (a.command.empty()) throw UsageError("acquire needs a COMMAND to run: ipcctl acquire NAME -- COMMAND [ARG...]");

    const std::string sock = socket_path(g);
    const ErrorContext ctx{sock, name, "acquire"};
    std::shared_ptr<ipc::Session> session;
    ipc::Semaphore sem;
    try {
        session = ipc::Session::connect(sock);
        sem = ipc::Semaphore::open(session, name);
    } catch (const std::system_error& e) {
        return fail(e.code(), ctx);
    }

    const auto start = steady_clock::now();
    std::error_code ec;
    if (!timeout)
        ec = sem.acquire(count);
    else if (*timeout == nanoseconds::zero())
        ec = sem.try_acquire(count);
    else
        ec = sem.acquire_for(count, *timeout);
    if (ec == ipc::proto::Result::timed_out)
        return fail("timed out after " + format_duration(*timeout) + " waiting for " + permits_word(count) + " of semaphore " +
                        name + ": retry, or raise --timeout",
                    conflict_code);
    if (ec == ipc::proto::Result::would_block)
        return fail("semaphore " + name + " has " +
                        (count == 1 ? std::string("no permit") : "fewer than " + std::to_string(count) + " permits") +
                        " free now (" + (a.nonblock ? "--nonblock" : "--timeout 0") +
                        "): retry later, or wait with --timeout",
                    conflict_code);
    if (ec) return fail(ec, ctx);

    const std::uint64_t token = sem.fencing_token();
    if (a.verbose)
        std::fprintf(stderr, "ipcctl: acquired %s of semaphore %s (token %llu) after %s; running %s\n",
                     permits_word(count).c_str(), name.c_str(), static_cast<unsigned long long>(token),
                     format_duration(steady_clock::now() - start).c_str(), a.command[0].c_str());

    const bool inherit = !a.no_inherit;
    std::optional<std::string> session_fd;
    if (inherit) {
        try {
            session->set_inheritable(true);
        } catch (const std::system_error& e) {
            (void)sem.release(count);
            return fail("cannot pass the session to the command: " + e.code().message(), exit_failure);
        }
        session_fd = std::to_string(session->socket_fd());
    }
    auto env = command_environment({
        {"IPC_FENCING_TOKEN", std::to_string(token)},
        {"IPC_SEMAPHORE", name},
        {"IPC_PERMITS", std::to_string(count)},
        {"IPCD_SOCKET", sock},
        {"IPC_SESSION_FD", session_fd},
    });
    const CommandResult result = run_command(a.command, std::move(env));
    const int status = result.status;

    // Without inheritance this process is the only holder: give the permits
    // back now. With it, the command (or what it left running) may still hold
    // the session; the daemon frees the permits when its last descriptor
    // closes, which is this process's exit if nothing else has it.
    if (!inherit || !result.started) {
        if (inherit) {
            try {
                session->set_inheritable(false);
            } catch (const std::system_error&) {
            }
        }
        (void)sem.release(count);  // a daemon gone away has freed them anyway
    }
    if (a.verbose && result.started)
        std::fprintf(stderr, "ipcctl: %s exited with status %d\n", a.command[0].c_str(), status);
    return status;
}

// --- command line --------------------------------------------------------------

constexpr const char* exit_codes_footer =
    "Exit status:\n"
    "  0      success (acquire: the command's exit status)\n"
    "  1      failure not listed below\n"
    "  2      usage error (bad option, number or name)\n"
    "  3      no such semaphore, session or channel\n"
    "  4      permission denied (or root only)\n"
    "  5      timed out, or no permits available now (acquire)\n"
    "  6      no daemon at the socket, or it went away\n"
    "  7      a semaphore of that name exists (create)\n"
    "  126    acquire: the command could not be run\n"
    "  127    acquire: the command was not found\n"
    "  128+N  acquire: the command was killed by signal N\n"
    "\n"
    "See ipcctl(1) for details.";

std::string version_string() {
    return std::string("ipcctl ") + IPCCTL_VERSION + " (ipcd protocol " + std::to_string(ipc::proto::version) + ")";
}

// The help hint for a usage error: the (innermost) verb's help if one was
// given ("see 'ipcctl channel rm --help'").
std::string help_hint(const CLI::App& app) {
    std::string verbs;
    for (const CLI::App* at = &app;;) {
        const auto subs = at->get_subcommands();
        if (subs.empty()) break;
        at = subs.front();
        verbs += " " + at->get_name();
    }
    return "see 'ipcctl" + verbs + " --help'";
}

int run(int argc, char** argv) {
    Global g;
    StatusArgs status_args;
    ChannelArgs channel_args;
    bool sessions_noheadings = false;
    bool channels_noheadings = false;
    std::string release_id;
    ListArgs list_args;
    CreateArgs create_args;
    DeleteArgs delete_args;
    AcquireArgs acquire_args;
    std::string stat_name;

    CLI::App app{"Inspect and use ipcd, the named-semaphore daemon.", "ipcctl"};
    app.get_formatter()->label("SUBCOMMAND", "VERB [ARGS]");
    app.footer(exit_codes_footer);
    app.fallthrough();  // global options may follow the verb: `ipcctl list --json`
    app.set_version_flag("-V,--version", version_string(), "Print the version and exit");
    app.add_option("-s,--socket", g.socket,
                   "The daemon's socket (default: $IPCD_SOCKET, else /run/ipcd/ipcd.sock for root, "
                   "else $XDG_RUNTIME_DIR/ipcd.sock)")
        ->type_name("PATH");
    app.add_flag("-j,--json", g.json, "Print JSON instead of tables");

    auto* status = app.add_subcommand("status", "Show the daemon's pid, socket, uptime, sessions and waits, "
                                                "and your usage of its per-user limits");
    auto* status_user = status->add_option("-u,--user", status_args.user,
                                           "Show the usage of this user (name or uid) instead of yours; "
                                           "another user's needs root")
                            ->type_name("USER");
    status->footer(std::string("Sessions include the one ipcctl opens to ask. A limit shown as \"no limit\"\n"
                               "does not apply (root is exempt).\n\n") +
                   exit_codes_footer);

    auto* list = app.add_subcommand("list", "List the semaphores");
    list->add_flag("-n,--noheadings", list_args.noheadings, "Do not print the header line");
    list->add_option("-o,--output", list_args.output,
                     "Columns to show, comma-separated: NAME,PERMITS,AVAILABLE,HOLDERS,WAITERS,"
                     "OWNER,GROUP,MODE,PERSISTENT,TOKEN (default: all)")
        ->type_name("COLUMNS");

    auto* stat = app.add_subcommand("stat", "Show one semaphore with its holders and waiters");
    stat->add_option("NAME", stat_name, "The semaphore")->required()->type_name("");

    auto* create = app.add_subcommand("create", "Create a semaphore");
    create->add_option("NAME", create_args.name, "1-32 characters of A-Z a-z 0-9 . _ - not starting with '.'")
        ->required()
        ->type_name("");
    create->add_option("-p,--permits", create_args.permits, "Number of permits (1-4294967295)")
        ->required()
        ->type_name("N");
    create->add_option("-m,--mode", create_args.mode,
                       "Octal permission bits, r: stat, w: acquire, for owner/group/others (default 0600)")
        ->type_name("OCTAL");
    create->add_flag("--persist", create_args.persist, "Keep the semaphore across daemon restarts");
    create->add_flag("--exist-ok", create_args.exist_ok,
                     "Succeed if the name exists already (its settings are left as they are)");

    auto* del = app.add_subcommand("delete", "Delete a semaphore (owner or root); its waiters fail");
    del->add_option("NAME", delete_args.name, "The semaphore")->required()->type_name("");
    del->add_flag("-f,--force", delete_args.force, "Succeed if there is no such semaphore");

    auto* acquire = app.add_subcommand("acquire", "Run a command while holding permits of a semaphore");
    acquire->add_option("NAME", acquire_args.name, "The semaphore")->required()->type_name("");
    acquire->add_option("COMMAND", acquire_args.command,
                        "The command and its arguments (put -- before it if it has options)")
        ->type_name("");
    acquire->add_option("-c,--count", acquire_args.count, "Permits to acquire (default 1)")->type_name("K");
    acquire->add_option("-t,--timeout", acquire_args.timeout,
                                            "Give up after SECONDS (decimals allowed; 0: do not wait)")
        ->type_name("SECONDS");
    acquire->add_flag("-n,--nonblock", acquire_args.nonblock, "Fail at once if the permits are not free (--timeout 0)");
    acquire->add_option("-E,--conflict-exit-code", acquire_args.conflict_exit_code,
                        "Exit status when timed out or not free (0-255, default 5)")
        ->type_name("CODE");
    acquire->add_flag("--no-inherit", acquire_args.no_inherit,
                      "Do not pass the session to the command: the permits are released when ipcctl exits");
    acquire->add_flag("-v,--verbose", acquire_args.verbose, "Report on stderr when the permits are acquired");

    auto* sessions = app.add_subcommand("sessions", "List the daemon's sessions: who is connected, what they hold");
    sessions->add_flag("-n,--noheadings", sessions_noheadings, "Do not print the header line");
    sessions->footer(std::string("Columns: ID (session id), PID and UID of the process that connected, COMMAND\n"
                                 "(its name when it connected), HELD (permits held, all semaphores), WAITS\n"
                                 "(acquires pending). The list includes ipcctl's own session.\n\n") +
                     exit_codes_footer);

    auto* release = app.add_subcommand("release-session",
                                       "End a session as if its client had died (root): its permits go back");
    release->add_option("ID", release_id, "The session id (see 'ipcctl sessions')")->required()->type_name("");
    release->footer(std::string("Gives back every permit the session holds, cancels its waits and closes its\n"
                                "socket; its client sees the connection reset. Only root may do it.\n\n") +
                    exit_codes_footer);

    auto* reload = app.add_subcommand("reload", "Make ipcd re-read its configuration file (root), as SIGHUP does");
    reload->footer(std::string("Prints how many semaphores the configuration declares. If the file is invalid,\n"
                               "ipcd keeps its running configuration and its log says where and why\n"
                               "(journalctl -u ipcd); ipcctl then exits 1.\n\n") +
                   exit_codes_footer);

    auto* channels = app.add_subcommand("channels", "List the named channels in /dev/shm (no daemon needed)");
    channels->add_flag("-n,--noheadings", channels_noheadings, "Do not print the header line");
    channels->footer(std::string("Columns: NAME, KIND (spsc, mpmc, or invalid), CAPACITY, DEPTH (messages\n"
                                 "buffered), SENDERS-SLEEPING and RECEIVERS-SLEEPING (blocked in the kernel),\n"
                                 "CLOSED, OWNER and MODE of the file, and PROBLEM: why a file named\n"
                                 "/dev/shm/ipc.* is not a usable channel. Files are only read, never mapped.\n\n") +
                     exit_codes_footer);

    auto* channel = app.add_subcommand("channel", "Inspect or remove one named channel: channel stat|rm NAME");
    channel->fallthrough();
    auto* channel_stat = channel->add_subcommand("stat", "Show a channel's header and counters");
    channel_stat->add_option("NAME", channel_args.name, "The channel (/dev/shm/ipc.NAME)")->required()->type_name("");
    channel_stat->fallthrough();
    channel_stat->footer(std::string("A file that is not a usable channel is shown with its problem, and ipcctl\n"
                                     "exits 1.\n\n") +
                         exit_codes_footer);
    auto* channel_rm = channel->add_subcommand("rm", "Remove a channel's name (open handles keep working)");
    channel_rm->add_option("NAME", channel_args.name, "The channel (/dev/shm/ipc.NAME)")->required()->type_name("");
    channel_rm->add_flag("-f,--force", channel_args.force, "Succeed if there is no such channel");
    channel_rm->fallthrough();
    channel_rm->footer(exit_codes_footer);
    channel->footer(exit_codes_footer);

    for (auto* verb : {status, list, stat, create, del, acquire, sessions, release, reload, channels, channel})
        verb->group("Verbs");
    acquire->footer(
        "The command runs with the session inherited, like flock(1): the permits stay held until the command\n"
        "and anything it started that keeps the descriptor have exited, even if ipcctl is killed.\n"
        "Its environment has IPC_FENCING_TOKEN, IPC_SEMAPHORE, IPC_PERMITS, IPCD_SOCKET and (unless\n"
        "--no-inherit) IPC_SESSION_FD. ipcctl forwards HUP, INT, QUIT, TERM, USR1 and USR2 to the command\n"
        "and exits with its status (128+N if signal N killed it).\n\n" +
        std::string(exit_codes_footer));

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        std::string msg = e.what();
        if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
            if (acquire->parsed())
                msg += " (put -- before the command: ipcctl acquire NAME -- COMMAND ARG...)";
            else if (app.get_subcommands().empty())
                msg = "unknown verb or argument" + msg.substr(msg.find(':'));
        }
        return fail(msg + "; " + help_hint(app), exit_usage);
    }

    try {
        if (status->parsed()) {
            if (status_user->count() == 0) status_args.user.reset();
            return cmd_status(g, status_args);
        }
        if (sessions->parsed()) return cmd_sessions(g, sessions_noheadings);
        if (release->parsed()) return cmd_release_session(g, release_id);
        if (reload->parsed()) return cmd_reload(g);
        if (channels->parsed()) return cmd_channels(g, channels_noheadings);
        if (channel_stat->parsed()) return cmd_channel_stat(g, channel_args);
        if (channel_rm->parsed()) return cmd_channel_rm(channel_args);
        if (channel->parsed())
            return fail("channel needs a verb: 'channel stat NAME' or 'channel rm NAME'; see 'ipcctl channel --help'",
                        exit_usage);
        if (list->parsed()) return cmd_list(g, list_args);
        if (stat->parsed()) return cmd_stat(g, stat_name);
        if (create->parsed()) return cmd_create(g, create_args);
        if (del->parsed()) return cmd_delete(g, delete_args);
        if (acquire->parsed()) return cmd_acquire(g, acquire_args);
    } catch (const UsageError& e) {
        return fail(std::string(e.what()) + "; " + help_hint(app), exit_usage);
    }
    return fail("a verb is required: status, list, stat, create, delete, acquire, sessions, release-session, reload, "
                "channels or channel; see 'ipcctl --help'",
                exit_usage);
}

}  // namespace
}  // namespace ipcctl

int main(int argc, char** argv) {
    int code = ipcctl::exit_failure;
    try {
        code = ipcctl::run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ipcctl: %s\n", e.what());
        return ipcctl::exit_failure;
    }
    // util-linux's close_stdout(): a full disk or closed pipe is an error too.
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        std::fprintf(stderr, "ipcctl: write error: %s\n", std::strerror(errno));
        return code == ipcctl::exit_ok ? ipcctl::exit_failure : code;
    }
    return code;
}
