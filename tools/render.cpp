// tools/render.cpp - human tables and JSON for ipcctl (render.hpp).
#include "render.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

#include "parse.hpp"

namespace ipcctl {
namespace {

using namespace std::chrono;

// The name of a uid/gid through the reentrant lookups, nullopt if none.
std::optional<std::string> lookup_user(uid_t uid) {
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
    passwd pw{};
    passwd* out = nullptr;
    if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &out) != 0 || out == nullptr) return std::nullopt;
    return std::string(out->pw_name);
}

std::optional<std::string> lookup_group(gid_t gid) {
    long size = sysconf(_SC_GETGR_R_SIZE_MAX);
    std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
    group gr{};
    group* out = nullptr;
    if (getgrgid_r(gid, &gr, buf.data(), buf.size(), &out) != 0 || out == nullptr) return std::nullopt;
    return std::string(out->gr_name);
}

nlohmann::ordered_json name_or_null(const std::optional<std::string>& n) {
    return n ? nlohmann::ordered_json(*n) : nlohmann::ordered_json(nullptr);
}

std::string user_or_id(const Context& ctx, uid_t uid) {
    auto n = ctx.user_name ? ctx.user_name(uid) : std::nullopt;
    return n ? *n : std::to_string(uid);
}

std::string group_or_id(const Context& ctx, gid_t gid) {
    auto n = ctx.group_name ? ctx.group_name(gid) : std::nullopt;
    return n ? *n : std::to_string(gid);
}

// "2025-01-31 12:00:00 UTC (3s ago)"
std::string when(system_clock::time_point t, const Context& ctx) {
    const auto ago = ctx.now - t;
    std::string s = iso8601(t);
    if (ago >= nanoseconds::zero()) s += " (" + format_duration(duration_cast<seconds>(ago)) + " ago)";
    return s;
}

// "Key:" padded to the widest key, one space, the value (systemctl status).
std::string key_values(const std::vector<std::pair<std::string, std::string>>& rows) {
    std::size_t width = 0;
    for (const auto& [k, v] : rows) width = std::max(width, k.size());
    std::string out;
    for (const auto& [k, v] : rows) out += k + std::string(width - k.size() + 1, ' ') + v + "\n";
    return out;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

nlohmann::ordered_json holder_json(const ipc::HolderInfo& h, const Context& ctx) {
    return {
        {"pid", h.pid},
        {"uid", h.uid},
        {"user", name_or_null(ctx.user_name ? ctx.user_name(h.uid) : std::nullopt)},
        {"count", h.count},
        {"since", iso8601(h.since)},
        {"session", h.session},
    };
}

// One column of `list`: header, alignment, how to show a semaphore, and
// whether the daemon's list gives it (else it needs a stat).
struct ListColumn {
    Column column;
    std::string (*cell)(const ipc::SemaphoreInfo&, const Context&);
    bool from_list = false;
};

const std::map<std::string, ListColumn>& list_column_table() {
    static const std::map<std::string, ListColumn> table = {
        {"NAME", {{"NAME"}, [](const ipc::SemaphoreInfo& s, const Context&) { return s.name; }, true}},
        {"PERMITS",
         {{"PERMITS", true}, [](const ipc::SemaphoreInfo& s, const Context&) { return std::to_string(s.permits); },
          true}},
        {"AVAILABLE",
         {{"AVAILABLE", true},
          [](const ipc::SemaphoreInfo& s, const Context&) { return std::to_string(s.available); }, true}},
        {"HOLDERS",
         {{"HOLDERS", true},
          [](const ipc::SemaphoreInfo& s, const Context&) { return std::to_string(s.holder_count); }}},
        {"WAITERS",
         {{"WAITERS", true},
          [](const ipc::SemaphoreInfo& s, const Context&) { return std::to_string(s.waiter_count); }}},
        {"OWNER", {{"OWNER"}, [](const ipc::SemaphoreInfo& s, const Context& c) { return user_or_id(c, s.owner); }}},
        {"GROUP", {{"GROUP"}, [](const ipc::SemaphoreInfo& s, const Context& c) { return group_or_id(c, s.group); }}},
        {"MODE", {{"MODE"}, [](const ipc::SemaphoreInfo& s, const Context&) { return octal_mode(s.mode); }}},
        {"PERSISTENT",
         {{"PERSISTENT"},
          [](const ipc::SemaphoreInfo& s, const Context&) { return std::string(s.persistent ? "yes" : "no"); }}},
        {"DECLARED",
         {{"DECLARED"},
          [](const ipc::SemaphoreInfo& s, const Context&) { return std::string(s.declared ? "yes" : "no"); }}},
        {"TOKEN",
         {{"TOKEN", true}, [](const ipc::SemaphoreInfo& s, const Context&) { return std::to_string(s.last_token); }}},
    };
    return table;
}

}  // namespace

Context Context::system() {
    Context c;
    c.user_name = lookup_user;
    c.group_name = lookup_group;
    return c;
}

// --- Table -------------------------------------------------------------------

void Table::add_row(std::vector<std::string> cells) {
    cells.resize(columns_.size());
    rows_.push_back(std::move(cells));
}

std::string Table::render(bool headings, std::string_view indent) const {
    std::vector<std::size_t> width(columns_.size(), 0);
    for (std::size_t i = 0; i < columns_.size(); ++i) {
        if (headings) width[i] = columns_[i].header.size();
        for (const auto& r : rows_) width[i] = std::max(width[i], r[i].size());
    }
    std::string out;
    auto line = [&](auto cell_of) {
        std::string l(indent);
        for (std::size_t i = 0; i < columns_.size(); ++i) {
            const std::string& cell = cell_of(i);
            const std::size_t pad = width[i] - cell.size();
            if (i > 0) l += "  ";
            if (columns_[i].right) l.append(pad, ' ');
            l += cell;
            if (!columns_[i].right) l.append(pad, ' ');
        }
        while (!l.empty() && l.back() == ' ') l.pop_back();
        out += l;
        out += '\n';
    };
    if (headings) line([&](std::size_t i) -> const std::string& { return columns_[i].header; });
    for (const auto& r : rows_) line([&](std::size_t i) -> const std::string& { return r[i]; });
    return out;
}

// --- formatting helpers ------------------------------------------------------

std::string iso8601(system_clock::time_point t) {
    const auto ms_total = duration_cast<milliseconds>(t.time_since_epoch()).count();
    auto secs = static_cast<std::time_t>(ms_total / 1000);
    auto ms = ms_total % 1000;
    if (ms < 0) {  // before 1970: floor, not truncate
        ms += 1000;
        --secs;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
    return buf;
}

std::string format_duration(nanoseconds d) {
    if (d < nanoseconds::zero()) d = nanoseconds::zero();
    if (d < seconds(1)) {
        if (d == nanoseconds::zero()) return "0s";
        if (d < microseconds(1)) return std::to_string(d.count()) + "ns";
        if (d < milliseconds(1)) return std::to_string(duration_cast<microseconds>(d).count()) + "us";
        return std::to_string(duration_cast<milliseconds>(d).count()) + "ms";
    }
    auto s = duration_cast<seconds>(d).count();
    const std::pair<long long, const char*> units[] = {{86400, "d"}, {3600, "h"}, {60, "min"}, {1, "s"}};
    std::string out;
    for (auto [size, name] : units) {
        if (s >= size) {
            if (!out.empty()) out += ' ';
            out += std::to_string(s / size) + name;
            s %= size;
        }
    }
    return out;
}

std::string octal_mode(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c > 0x20 && c < 0x7f && c != '\\') {
            out += ch;
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

std::string symbolic_mode(mode_t mode) {
    std::string s(9, '-');
    const char letters[] = "rwx";
    for (int i = 0; i < 9; ++i)
        if (mode & (0400u >> i)) s[static_cast<std::size_t>(i)] = letters[i % 3];
    return s;
}

// --- status ------------------------------------------------------------------

namespace {

nlohmann::ordered_json count_json(const ipc::UsageInfo::Count& c) {
    return {{"used", c.used}, {"limit", c.limit == 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(c.limit)}};
}

// "1/64", "0/256 owned", or "1 (no limit)", "0 owned (no limit)".
std::string count_text(const ipc::UsageInfo::Count& c, std::string_view what = {}) {
    std::string out = std::to_string(c.used);
    if (c.limit != 0) out += "/" + std::to_string(c.limit);
    if (!what.empty()) out += " " + std::string(what);
    if (c.limit == 0) out += " (no limit)";
    return out;
}

}  // namespace

nlohmann::ordered_json usage_json(const ipc::UsageInfo& u, const Context& ctx) {
    return {
        {"uid", u.uid},
        {"user", name_or_null(ctx.user_name ? ctx.user_name(u.uid) : std::nullopt)},
        {"sessions", count_json(u.sessions)},
        {"semaphores", count_json(u.semaphores)},
        {"waits", count_json(u.waits)},
        {"handles_per_session", u.handles_per_session == 0 ? nlohmann::ordered_json(nullptr)
                                                           : nlohmann::ordered_json(u.handles_per_session)},
        {"may_create", u.may_create},
    };
}

std::string usage_text(const ipc::UsageInfo& u, const Context& ctx) {
    std::string body = key_values({
        {"Sessions:", count_text(u.sessions)},
        {"Semaphores:", count_text(u.semaphores, "owned")},
        {"Waits:", count_text(u.waits, "pending")},
        {"Handles per session:",
         u.handles_per_session == 0 ? std::string("no limit") : std::to_string(u.handles_per_session)},
        {"May create:", u.may_create ? "yes" : "no"},
    });
    std::string out = "Usage of " + user_or_id(ctx, u.uid) + " (uid " + std::to_string(u.uid) + "):\n";
    std::size_t start = 0;
    while (start < body.size()) {
        const auto nl = body.find('\n', start);
        out += "  " + body.substr(start, nl + 1 - start);
        start = nl + 1;
    }
    return out;
}

nlohmann::ordered_json status_json(const ipc::DaemonStatus& st, std::string_view socket, const Context& ctx,
                                   const std::optional<ipc::UsageInfo>& usage) {
    const auto up = duration_cast<seconds>(ctx.now - st.started).count();
    return {
        {"pid", st.pid},
        {"socket", socket},
        {"started", iso8601(st.started)},
        {"uptime", up < 0 ? 0 : up},
        {"sessions", st.sessions},
        {"semaphores", st.semaphores},
        {"waiting", st.waiting},
        {"usage", usage ? usage_json(*usage, ctx) : nlohmann::ordered_json(nullptr)},
    };
}

std::string status_text(const ipc::DaemonStatus& st, std::string_view socket, const Context& ctx,
                        const std::optional<ipc::UsageInfo>& usage) {
    std::string out = key_values({
        {"Daemon:", "ipcd (pid " + std::to_string(st.pid) + ")"},
        {"Socket:", std::string(socket)},
        {"Started:", iso8601(st.started)},
        {"Uptime:", format_duration(duration_cast<seconds>(ctx.now - st.started))},
        {"Sessions:", std::to_string(st.sessions) + " (this one included)"},
        {"Semaphores:", std::to_string(st.semaphores)},
        {"Waiting:", std::to_string(st.waiting) + " request" + (st.waiting == 1 ? "" : "s")},
    });
    if (usage) out += "\n" + usage_text(*usage, ctx);
    return out;
}

// --- sessions, release-session, reload ----------------------------------------

nlohmann::ordered_json sessions_json(const std::vector<ipc::SessionInfo>& list, std::uint32_t self,
                                     const Context& ctx) {
    auto j = nlohmann::ordered_json::array();
    for (const auto& s : list) {
        j.push_back({
            {"id", s.id},
            {"pid", s.pid},
            {"uid", s.uid},
            {"user", name_or_null(ctx.user_name ? ctx.user_name(s.uid) : std::nullopt)},
            {"gid", s.gid},
            {"group", name_or_null(ctx.group_name ? ctx.group_name(s.gid) : std::nullopt)},
            {"command", s.comm},
            {"permits_held", s.permits_held},
            {"waits", s.waits},
            {"self", s.id == self},
        });
    }
    return j;
}

std::string sessions_text(const std::vector<ipc::SessionInfo>& list, bool headings) {
    Table t({{"ID", true}, {"PID", true}, {"UID", true}, {"COMMAND"}, {"HELD", true}, {"WAITS", true}});
    for (const auto& s : list)
        t.add_row({std::to_string(s.id), std::to_string(s.pid), std::to_string(s.uid),
                   s.comm.empty() ? std::string("-") : printable(s.comm), std::to_string(s.permits_held),
                   std::to_string(s.waits)});
    return t.render(headings);
}

nlohmann::ordered_json release_json(std::uint32_t id, const ipc::ReleaseResult& r) {
    return {{"session", id}, {"permits_released", r.permits_released}, {"waits_cancelled", r.waits_cancelled}};
}

std::string release_text(std::uint32_t id, const ipc::ReleaseResult& r, const ipc::SessionInfo* who) {
    std::string out = "released session " + std::to_string(id);
    if (who != nullptr)
        out += " (pid " + std::to_string(who->pid) + ", uid " + std::to_string(who->uid) +
               (who->comm.empty() ? std::string() : ", " + printable(who->comm)) + ")";
    out += ": " + std::to_string(r.permits_released) + (r.permits_released == 1 ? " permit" : " permits") +
           " given back, " + std::to_string(r.waits_cancelled) + (r.waits_cancelled == 1 ? " wait" : " waits") +
           " cancelled\n";
    return out;
}

nlohmann::ordered_json reload_json(std::uint32_t declared) { return {{"declared", declared}}; }

std::string reload_text(std::uint32_t declared) {
    return "reloaded: " + std::to_string(declared) + " declared semaphore" + (declared == 1 ? "" : "s") + "\n";
}

// --- channels --------------------------------------------------------------------

std::string channel_kind(const ipc::ChannelEntry& e) {
    if (!e.info) return "invalid";
    return e.info->kind == ipc::ChannelKind::mpmc ? "mpmc" : "spsc";
}

nlohmann::ordered_json channel_json(const ipc::ChannelEntry& e, bool details, const Context& ctx) {
    using J = nlohmann::ordered_json;
    const J null(nullptr);
    const auto* i = e.info ? &*e.info : nullptr;
    J j = {
        {"name", e.name},
        {"path", e.path},
        {"kind", channel_kind(e)},
        {"problem", e.problem.empty() ? null : J(e.problem)},
        {"owner", e.has_stat ? J(e.owner) : null},
        {"owner_name", e.has_stat ? name_or_null(ctx.user_name ? ctx.user_name(e.owner) : std::nullopt) : null},
        {"group", e.has_stat ? J(e.group) : null},
        {"group_name", e.has_stat ? name_or_null(ctx.group_name ? ctx.group_name(e.group) : std::nullopt) : null},
        {"mode", e.has_stat ? J(octal_mode(e.mode)) : null},
        {"size", e.has_stat ? J(e.size) : null},
        {"capacity", i ? J(i->capacity) : null},
        {"depth", i ? J(i->depth) : null},
        {"sleeping_senders", i ? J(i->sleeping_senders) : null},
        {"sleeping_receivers", i ? J(i->sleeping_receivers) : null},
        {"closed", i ? J(i->closed) : null},
    };
    if (details) {
        j["version"] = i ? J(i->version) : null;
        j["slot_count"] = i ? J(i->slot_count) : null;
        j["slot_size"] = i ? J(i->slot_size) : null;
        j["slots_offset"] = i ? J(i->slots_offset) : null;
        j["total_size"] = i ? J(i->total_size) : null;
        j["creator_pid"] = i ? J(i->creator_pid) : null;
        j["creator_uid"] = i ? J(i->creator_uid) : null;
        j["head"] = i ? J(i->head) : null;
        j["tail"] = i ? J(i->tail) : null;
        j["not_empty_seq"] = i ? J(i->not_empty_seq) : null;
        j["not_full_seq"] = i ? J(i->not_full_seq) : null;
    }
    return j;
}

nlohmann::ordered_json channels_json(const std::vector<ipc::ChannelEntry>& list, const Context& ctx) {
    auto j = nlohmann::ordered_json::array();
    for (const auto& e : list) j.push_back(channel_json(e, false, ctx));
    return j;
}

std::string channels_text(const std::vector<ipc::ChannelEntry>& list, bool headings, const Context& ctx) {
    Table t({{"NAME"},
             {"KIND"},
             {"CAPACITY", true},
             {"DEPTH", true},
             {"SENDERS-SLEEPING", true},
             {"RECEIVERS-SLEEPING", true},
             {"CLOSED"},
             {"OWNER"},
             {"MODE"},
             {"PROBLEM"}});
    for (const auto& e : list) {
        const std::string dash = "-";
        const auto* i = e.info ? &*e.info : nullptr;
        t.add_row({
            printable(e.name),
            channel_kind(e),
            i ? std::to_string(i->capacity) : dash,
            i ? std::to_string(i->depth) : dash,
            i ? std::to_string(i->sleeping_senders) : dash,
            i ? std::to_string(i->sleeping_receivers) : dash,
            i ? std::string(i->closed ? "yes" : "no") : dash,
            e.has_stat ? user_or_id(ctx, e.owner) : dash,
            e.has_stat ? octal_mode(e.mode) : dash,
            e.problem,
        });
    }
    return t.render(headings);
}

std::string channel_stat_text(const ipc::ChannelEntry& e, const Context& ctx) {
    std::vector<std::pair<std::string, std::string>> rows = {
        {"Name:", printable(e.name)},
        {"Path:", printable(e.path)},
        {"Kind:", channel_kind(e)},
    };
    if (!e.problem.empty()) rows.push_back({"Problem:", e.problem});
    if (e.has_stat) {
        rows.push_back({"Owner:", user_or_id(ctx, e.owner) + " (uid " + std::to_string(e.owner) + ")"});
        rows.push_back({"Group:", group_or_id(ctx, e.group) + " (gid " + std::to_string(e.group) + ")"});
        rows.push_back({"Mode:", octal_mode(e.mode) + " (" + symbolic_mode(e.mode) + ")"});
        rows.push_back({"Size:", std::to_string(e.size) + " bytes"});
    }
    if (const auto* i = e.info ? &*e.info : nullptr) {
        rows.push_back({"Capacity:", std::to_string(i->capacity) + " messages (" + std::to_string(i->slot_count) +
                                         " slots of " + std::to_string(i->slot_size) + " bytes at offset " +
                                         std::to_string(i->slots_offset) + ")"});
        rows.push_back({"Depth:", std::to_string(i->depth) + " buffered (head " + std::to_string(i->head) +
                                      ", tail " + std::to_string(i->tail) + ")"});
        rows.push_back({"Sleeping:", std::to_string(i->sleeping_senders) + " senders, " +
                                         std::to_string(i->sleeping_receivers) + " receivers"});
        rows.push_back({"Closed:", i->closed ? "yes" : "no"});
        rows.push_back({"Layout:", "version " + std::to_string(i->version) + ", " + std::to_string(i->total_size) +
                                       " bytes"});
        rows.push_back({"Creator:", "pid " + std::to_string(i->creator_pid) + ", uid " +
                                        std::to_string(i->creator_uid)});
        rows.push_back({"Futex words:", "not_empty " + std::to_string(i->not_empty_seq) + ", not_full " +
                                            std::to_string(i->not_full_seq)});
    }
    return key_values(rows);
}

// --- list --------------------------------------------------------------------

const std::vector<std::string>& list_columns() {
    static const std::vector<std::string> cols = {"NAME",  "PERMITS", "AVAILABLE", "HOLDERS",    "WAITERS", "OWNER",
                                                  "GROUP", "MODE",    "PERSISTENT", "DECLARED", "TOKEN"};
    return cols;
}

std::vector<std::string> parse_columns(std::string_view spec) {
    std::vector<std::string> out;
    const auto& table = list_column_table();
    std::size_t start = 0;
    while (true) {
        const auto comma = spec.find(',', start);
        const auto item = upper(spec.substr(start, comma == std::string_view::npos ? spec.npos : comma - start));
        if (!table.count(item)) {
            std::string valid;
            for (const auto& c : list_columns()) valid += (valid.empty() ? "" : ",") + c;
            throw UsageError("unknown column '" + item + "' in --output: choose from " + valid);
        }
        out.push_back(item);
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

nlohmann::ordered_json semaphore_json(const ipc::SemaphoreInfo& s, bool details, const Context& ctx) {
    nlohmann::ordered_json j = {
        {"name", s.name},
        {"permits", s.permits},
        {"available", s.available},
        {"holder_count", s.holder_count},
        {"waiter_count", s.waiter_count},
        {"owner", s.owner},
        {"owner_name", name_or_null(ctx.user_name ? ctx.user_name(s.owner) : std::nullopt)},
        {"group", s.group},
        {"group_name", name_or_null(ctx.group_name ? ctx.group_name(s.group) : std::nullopt)},
        {"mode", octal_mode(s.mode)},
        {"persistent", s.persistent},
        {"declared", s.declared},
        {"last_token", s.last_token},
    };
    if (details) {
        auto holders = nlohmann::ordered_json::array();
        for (const auto& h : s.holders) holders.push_back(holder_json(h, ctx));
        auto waiters = nlohmann::ordered_json::array();
        for (const auto& w : s.waiters) waiters.push_back(holder_json(w, ctx));
        j["holders"] = std::move(holders);
        j["waiters"] = std::move(waiters);
    }
    return j;
}

nlohmann::ordered_json list_json(const std::vector<ListEntry>& sems, const Context& ctx) {
    auto j = nlohmann::ordered_json::array();
    for (const auto& e : sems) {
        auto obj = semaphore_json(e.info, false, ctx);
        if (!e.detailed)
            for (auto& [key, value] : obj.items())
                if (key != "name" && key != "permits" && key != "available") value = nullptr;
        j.push_back(std::move(obj));
    }
    return j;
}

std::string list_text(const std::vector<ListEntry>& sems, const std::vector<std::string>& columns, bool headings,
                      const Context& ctx) {
    const auto& table = list_column_table();
    std::vector<Column> cols;
    for (const auto& c : columns) cols.push_back(table.at(c).column);
    Table t(std::move(cols));
    for (const auto& e : sems) {
        std::vector<std::string> row;
        for (const auto& c : columns) {
            const ListColumn& col = table.at(c);
            row.push_back(e.detailed || col.from_list ? col.cell(e.info, ctx) : std::string("-"));
        }
        t.add_row(std::move(row));
    }
    return t.render(headings);
}

// --- stat --------------------------------------------------------------------

std::string stat_text(const ipc::SemaphoreInfo& s, const Context& ctx) {
    std::string out = key_values({
        {"Name:", s.name},
        {"Permits:", std::to_string(s.permits) + " (" + std::to_string(s.available) + " available, " +
                         std::to_string(s.permits - std::min(s.available, s.permits)) + " held)"},
        {"Owner:", user_or_id(ctx, s.owner) + " (uid " + std::to_string(s.owner) + ")"},
        {"Group:", group_or_id(ctx, s.group) + " (gid " + std::to_string(s.group) + ")"},
        {"Mode:", octal_mode(s.mode) + " (" + symbolic_mode(s.mode) + ")"},
        {"Persistent:", s.persistent ? "yes" : "no"},
        {"Declared:", s.declared ? "yes (in ipcd's configuration file)" : "no"},
        {"Last token:", std::to_string(s.last_token)},
    });

    auto people = [&](std::string_view title, const std::vector<ipc::HolderInfo>& list, std::uint32_t total,
                      std::string_view count_header) {
        out += "\n" + std::string(title) + ": " + std::to_string(total) + "\n";
        if (list.empty()) return;
        Table t({{"PID", true}, {"USER"}, {std::string(count_header), true}, {"SESSION", true}, {"SINCE"}});
        for (const auto& h : list)
            t.add_row({std::to_string(h.pid), user_or_id(ctx, h.uid), std::to_string(h.count),
                       std::to_string(h.session), when(h.since, ctx)});
        out += t.render(true, "  ");
    };
    people("Holders", s.holders, std::max<std::uint32_t>(s.holder_count, static_cast<std::uint32_t>(s.holders.size())),
           "HELD");
    people("Waiters", s.waiters, std::max<std::uint32_t>(s.waiter_count, static_cast<std::uint32_t>(s.waiters.size())),
           "WANTS");
    return out;
}

}  // namespace ipcctl
