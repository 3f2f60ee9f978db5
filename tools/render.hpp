// tools/render.hpp - how ipcctl shows what it gathered.
//
// The verbs in ipcctl.cpp gather plain data from the daemon (ipc::DaemonStatus,
// ipc::SemaphoreInfo); the functions here turn that data into a human table or
// a JSON document and do no I/O of their own. Everything the output depends on
// besides the data (the current time, uid and gid names) comes in a Context, so
// tests can pin it down.
//
// JSON shapes (docs/ipcctl.md is the reference):
//   status: {"pid", "socket", "started", "uptime", "sessions", "semaphores", "waiting"}
//   list:   [semaphore, ...]               semaphore without "holders"/"waiters";
//           fields other than name, permits, available are null for a
//           semaphore the caller may not read (no r bit for them)
//   stat:   semaphore with "holders": [holder, ...], "waiters": [holder, ...]
//   semaphore: {"name", "permits", "available", "holder_count", "waiter_count",
//               "owner", "owner_name", "group", "group_name", "mode",
//               "persistent", "last_token"}
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
// "rw-r-----"
std::string symbolic_mode(mode_t mode);

// --- status ------------------------------------------------------------------
nlohmann::ordered_json status_json(const ipc::DaemonStatus& st, std::string_view socket, const Context& ctx);
std::string status_text(const ipc::DaemonStatus& st, std::string_view socket, const Context& ctx);

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
