// tools/render.hpp - how ipcctl shows what it gathered.
//
// The verbs in ipcctl.cpp gather plain data from the daemon (ipc::DaemonStatus,
// ipc::SemaphoreInfo); the functions here turn that data into a human table or
// a JSON document and do no I/O of their own. Everything the output depends on
// besides the data (the current time, uid and gid names) comes in a Context, so
// tests can pin it down.
//
// JSON shapes (docs/ipcctl.md is the reference):
//   status: {"pid", "socket", "started", "uptime", "sessions", "semaphores", "waiting", "usage"}
//   usage:  {"uid", "user", "sessions": count, "semaphores": count, "waits": count,
//            "handles_per_session", "may_create"}   count: {"used", "limit"}; limit null: none
//   sessions: [{"id", "pid", "uid", "user", "gid", "group", "command", "permits_held",
//               "waits", "self"}, ...]
//   release-session: {"session", "permits_released", "waits_cancelled"}
//   reload: {"declared"}
//   channels: [channel, ...]; channel stat: channel with the header details
//   channel: {"name", "path", "kind", "problem", "owner", "owner_name", "group",
//             "group_name", "mode", "size", "capacity", "depth", "sleeping_senders",
//             "sleeping_receivers", "closed"}
//   list:   [semaphore, ...]               semaphore without "holders"/"waiters";
//           fields other than name, permits, available are null for a
//           semaphore the caller may not read (no r bit for them)
//   stat:   semaphore with "holders": [holder, ...], "waiters": [holder, ...]
//   semaphore: {"name", "permits", "available", "holder_count", "waiter_count",
//               "owner", "owner_name", "group", "group_name", "mode",
//               "persistent", "declared", "last_token"}
//   holder: {"pid", "uid", "user", "count", "since", "session"}
// Times ("started", "since") are ISO 8601 in UTC with milliseconds
// ("2025-01-31T12:00:00.250Z"); "uptime" is in seconds.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipc/inspect.hpp"
#include "ipc/semaphore.hpp"

namespace ipcctl {

// Everything rendering needs apart from the data.
struct Context {
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
    std::function<std::optional<std::string>(uid_t)> user_name;   // nullopt: unknown uid
    std::function<std::optional<std::string>(gid_t)> group_name;  // nullopt: unknown gid

    // The real clock and the passwd/group databases.
    static Context system();
};

// A column of a human table.
struct Column {
    std::string header;
    bool right = false;  // right-align (numbers)
};

// Aligned columns separated by two spaces, like lsipc and ipcs; no trailing
// blanks. The last column is not padded.
class Table {
public:
    explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
    void add_row(std::vector<std::string> cells);
    std::string render(bool headings = true, std::string_view indent = {}) const;
    bool empty() const noexcept { return rows_.empty(); }

private:
    std::vector<Column> columns_;
    std::vector<std::vector<std::string>> rows_;
};

// "2025-01-31T12:00:00.250Z"
std::string iso8601(std::chrono::system_clock::time_point t);
// "3h 2min 5s", "250ms", "0s"
std::string format_duration(std::chrono::nanoseconds d);
// "0640"
std::string octal_mode(mode_t mode);
// Text from outside (a command name, a file name) made safe for a terminal
// and for splitting a table on blanks (as lsblk does): the space, bytes
// outside printable ASCII and the backslash become \xNN.
std::string printable(std::string_view text);
// "rw-r-----"
std::string symbolic_mode(mode_t mode);

// --- status ------------------------------------------------------------------
// `usage` is the caller's (or --user's) use of the daemon's per-user limits;
// nullopt when the daemon is too old to say ("usage": null, no section).
nlohmann::ordered_json status_json(const ipc::DaemonStatus& st, std::string_view socket, const Context& ctx,
                                   const std::optional<ipc::UsageInfo>& usage = std::nullopt);
std::string status_text(const ipc::DaemonStatus& st, std::string_view socket, const Context& ctx,
                        const std::optional<ipc::UsageInfo>& usage = std::nullopt);
nlohmann::ordered_json usage_json(const ipc::UsageInfo& u, const Context& ctx);
// "Usage of alice (uid 1000):" and an indented line per limit.
std::string usage_text(const ipc::UsageInfo& u, const Context& ctx);

// --- sessions, release-session, reload ----------------------------------------
// `self`: the id of ipcctl's own session (marked in JSON).
nlohmann::ordered_json sessions_json(const std::vector<ipc::SessionInfo>& list, std::uint32_t self,
                                     const Context& ctx);
// Columns ID PID UID COMMAND HELD WAITS.
std::string sessions_text(const std::vector<ipc::SessionInfo>& list, bool headings);
nlohmann::ordered_json release_json(std::uint32_t id, const ipc::ReleaseResult& r);
// "released session 7 (pid 4242, uid 1000, sleep): 2 permits given back, 1 wait cancelled"
// `who`: the session as listed just before, if it was.
std::string release_text(std::uint32_t id, const ipc::ReleaseResult& r, const ipc::SessionInfo* who);
nlohmann::ordered_json reload_json(std::uint32_t declared);
// "reloaded: 3 declared semaphores"
std::string reload_text(std::uint32_t declared);

// --- channels --------------------------------------------------------------------
// The KIND column and "kind" field: "spsc", "mpmc", or "invalid".
std::string channel_kind(const ipc::ChannelEntry& e);
// `details`: also the header fields and raw counters (channel stat).
nlohmann::ordered_json channel_json(const ipc::ChannelEntry& e, bool details, const Context& ctx);
nlohmann::ordered_json channels_json(const std::vector<ipc::ChannelEntry>& list, const Context& ctx);
// Columns NAME KIND CAPACITY DEPTH SENDERS-SLEEPING RECEIVERS-SLEEPING CLOSED
// OWNER MODE PROBLEM; "-" where an invalid file has no value.
std::string channels_text(const std::vector<ipc::ChannelEntry>& list, bool headings, const Context& ctx);
std::string channel_stat_text(const ipc::ChannelEntry& e, const Context& ctx);

// --- list --------------------------------------------------------------------
// One line of `list`. The daemon's list gives name, permits and available;
// the rest comes from a stat, which needs the semaphore's r bit: without it
// `detailed` is false and those fields show as "-" (null in JSON).
struct ListEntry {
    ipc::SemaphoreInfo info;
    bool detailed = false;
};

// The columns `list -o` accepts, in default order.
const std::vector<std::string>& list_columns();
// Splits and checks a "-o NAME,PERMITS" list (case-insensitive); throws
// UsageError naming the unknown column and the valid ones.
std::vector<std::string> parse_columns(std::string_view spec);
nlohmann::ordered_json list_json(const std::vector<ListEntry>& sems, const Context& ctx);
std::string list_text(const std::vector<ListEntry>& sems, const std::vector<std::string>& columns, bool headings,
                      const Context& ctx);

// --- stat --------------------------------------------------------------------
nlohmann::ordered_json semaphore_json(const ipc::SemaphoreInfo& s, bool details, const Context& ctx);
std::string stat_text(const ipc::SemaphoreInfo& s, const Context& ctx);

}  // namespace ipcctl
