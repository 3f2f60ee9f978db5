// daemon/config.cpp - see config.hpp.
//
// toml++ turns the text into a tree (syntax errors come back as its
// parse_error, with a position); this file walks the tree and checks every
// key against what it expects. Keys are visited in file order so that the
// first error reported is the first one in the file. Every integer is
// range-checked as int64 before it is narrowed.
#include "config.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <new>
#include <set>
#include <toml++/toml.h>
#include <utility>

#include "ipc/protocol.hpp"
#include "sys.hpp"

namespace ipcd {

namespace {

constexpr std::int64_t limit_max = 1 << 20;
constexpr std::int64_t permits_max = INT32_MAX;
constexpr std::int64_t spin_max = 10000;
constexpr std::int64_t id_max = 4294967294;  // (uid_t)-1 means "no id" to chown(2) and friends
constexpr std::size_t socket_path_max = 107;  // sizeof(sockaddr_un::sun_path) - 1
constexpr std::size_t state_dir_max = 4000;   // room for "/semaphores.json.corrupt-<time>" under PATH_MAX
constexpr std::size_t file_max = 1 << 20;

// Appends `s` with control and non-ASCII bytes (and the bytes in `also`)
// written as \xNN, so that text from a hostile file can never put a line
// break or an escape sequence into the log.
void escape_into(std::string& out, std::string_view s, std::string_view also = {}) {
    static constexpr char hex[] = "0123456789abcdef";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7f && also.find(ch) == std::string_view::npos) {
            out += ch;
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
}

// A string from the file as it may appear in an error message: quoted,
// escaped (escape_into), long ones cut.
std::string quote(std::string_view s) {
    std::string out = "'";
    const std::size_t shown = std::min<std::size_t>(s.size(), 64);
    escape_into(out, s.substr(0, shown), "\\'");
    if (shown < s.size()) out += "...";
    out += "'";
    return out;
}

// A message that may quote the file (toml++'s parse errors do, raw): one
// line, escaped.
std::string one_line(std::string_view s) {
    std::string out;
    escape_into(out, s);
    return out;
}

// A key as it would be written in a table header: bare if it can be.
std::string header_key(std::string_view k) {
    const bool bare = !k.empty() && k.size() <= 64 && std::all_of(k.begin(), k.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
    return bare ? std::string(k) : quote(k);
}

const char* type_name(toml::node_type t) {
    switch (t) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a floating-point number";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

// Edit distance, for "did you mean". Both strings are short (keys of at
// most a few dozen bytes; longer ones are never close to a known key).
std::size_t distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

using Entry = std::pair<const toml::key*, const toml::node*>;

// A table's entries in file order (toml::table is ordered by key).
std::vector<Entry> in_file_order(const toml::table& t) {
    std::vector<Entry> v;
    for (auto&& [k, n] : t) v.emplace_back(&k, &n);
    std::stable_sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) {
        const auto& pa = a.first->source().begin;
        const auto& pb = b.first->source().begin;
        return std::pair(pa.line, pa.column) < std::pair(pb.line, pb.column);
    });
    return v;
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The account database, through the reentrant calls. nullopt: no such
// name; a lookup that fails for another reason sets `err`.
template <class Rec, class Id, class Fn>
std::optional<Id> lookup(const std::string& name, int& err, Fn fn, Id Rec::*field) {
    err = 0;
    std::vector<char> buf(1024);
    for (;;) {
        Rec e{};
        Rec* found = nullptr;
        const int r = fn(name.c_str(), &e, buf.data(), buf.size(), &found);
        if (r == ERANGE && buf.size() < (1u << 20)) {
            buf.resize(buf.size() * 2);
            continue;
        }
        if (found != nullptr) return e.*field;
        // glibc reports "not found" as 0; other NSS modules use these.
        if (r != 0 && r != ENOENT && r != ESRCH && r != EBADF && r != EPERM) err = r;
        return std::nullopt;
    }
}

class Parser {
public:
    explicit Parser(const std::string& source) : source_(source) {}

    Config parse(const toml::table& root) {
        for (const auto& [k, n] : in_file_order(root)) {
            const std::string_view key = k->str();
            if (key == "socket") {
                config_.socket_path = path(*k, *n, "", socket_path_max, "a Unix socket path");
            } else if (key == "state_dir") {
                config_.state_dir = path(*k, *n, "", state_dir_max, "the state directory");
            } else if (key == "spin_us") {
                config_.spin_us = static_cast<unsigned>(integer(*k, *n, "", 0, spin_max));
            } else if (key == "limits") {
                limits(*k, table(*k, *n, ""));
            } else if (key == "create") {
                create(*k, table(*k, *n, ""));
            } else if (key == "semaphore") {
                semaphores(*k, *n);
            } else {
                unknown(*k, *n, "", {"socket", "state_dir", "spin_us", "[limits]", "[create]", "[[semaphore]]"});
            }
        }
        return std::move(config_);
    }

private:
    // --- Errors ---------------------------------------------------------------

    [[noreturn]] void fail(const toml::source_region& at, const std::string& what) const {
        std::string msg = source_;
        if (at.begin.line != 0)
            msg += ":" + std::to_string(at.begin.line) + ":" + std::to_string(at.begin.column);
        throw ConfigError(msg + ": " + what);
    }

    // "'key'" or "'key' in [table]".
    static std::string named(const toml::key& k, const std::string& table) {
        return quote(k.str()) + (table.empty() ? "" : " in " + table);
    }

    [[noreturn]] void unknown(const toml::key& k, const toml::node& n, const std::string& table,
                              std::initializer_list<std::string_view> expected) const {
        std::string msg = std::string(n.is_table() ? "unknown table " : "unknown key ") + quote(k.str()) +
                          (table.empty() ? " at the top level" : " in " + table) + " (expected one of: ";
        std::string_view best;
        std::size_t best_d = SIZE_MAX;
        bool first = true;
        for (std::string_view e : expected) {
            msg += first ? "" : ", ";
            msg += e;
            first = false;
            std::string_view bare = e;
            while (!bare.empty() && bare.front() == '[') bare.remove_prefix(1);
            bare = bare.substr(0, bare.find(']'));
            if (k.str().size() > 64) continue;
            const std::size_t d = distance(k.str(), bare);
            if (d < best_d) {
                best_d = d;
                best = e;
            }
        }
        msg += ")";
        if (best_d != 0 && best_d <= std::max<std::size_t>(2, k.str().size() / 4))
            msg += "; did you mean " + std::string(best) + "?";
        fail(k.source(), msg);
    }

    [[noreturn]] void wrong_type(const toml::key& k, const toml::node& n, const std::string& table,
                                 const std::string& wanted) const {
        fail(n.source(), named(k, table) + " must be " + wanted + ", not " + type_name(n.type()));
    }

    // --- Values ---------------------------------------------------------------

    const toml::table& table(const toml::key& k, const toml::node& n, const std::string& table_name) const {
        if (const toml::table* t = n.as_table()) return *t;
        wrong_type(k, n, table_name, "a table");
    }

    static std::string range(std::int64_t lo, std::int64_t hi) {
        return std::to_string(lo) + " .. " + std::to_string(hi);
    }

    std::int64_t integer(const toml::key& k, const toml::node& n, const std::string& table, std::int64_t lo,
                         std::int64_t hi) const {
        const auto* v = n.as_integer();
        if (v == nullptr) wrong_type(k, n, table, "an integer (" + range(lo, hi) + ")");
        const std::int64_t x = v->get();
        if (x < lo || x > hi)
            fail(n.source(), named(k, table) + " = " + std::to_string(x) + " is out of range (" + range(lo, hi) + ")");
        return x;
    }

    std::string string(const toml::key& k, const toml::node& n, const std::string& table,
                       const std::string& wanted) const {
        const auto* v = n.as_string();
        if (v == nullptr) wrong_type(k, n, table, wanted);
        if (v->get().find('\0') != std::string::npos)
            fail(n.source(), named(k, table) + " contains a NUL character (\\u0000); remove it");
        return v->get();
    }

    bool boolean(const toml::key& k, const toml::node& n, const std::string& table) const {
        const auto* v = n.as_boolean();
        if (v == nullptr) wrong_type(k, n, table, "true or false");
        return v->get();
    }

    std::string path(const toml::key& k, const toml::node& n, const std::string& table, std::size_t max,
                     const char* what) const {
        std::string p = string(k, n, table, std::string("a string (") + what + ")");
        if (p.empty() || p.front() != '/')
            fail(n.source(), named(k, table) + " = " + quote(p) + " must be an absolute path (starting with '/')");
        if (p.size() > max)
            fail(n.source(), named(k, table) + " is " + std::to_string(p.size()) + " bytes long; " + what +
                                 " may have at most " + std::to_string(max) + ": choose a shorter path");
        return p;
    }

    // A user or group: a name (looked up), a string of digits, or an integer.
    std::uint32_t id(const toml::key& k, const toml::node& n, const std::string& table, bool is_group) const {
        const char* kind = is_group ? "group" : "user";
        const char* num = is_group ? "gid" : "uid";
        if (const auto* v = n.as_integer()) {
            if (v->get() < 0 || v->get() > id_max)
                fail(n.source(), named(k, table) + ": " + num + " " + std::to_string(v->get()) + " is out of range (" +
                                     range(0, id_max) + ")");
            return static_cast<std::uint32_t>(v->get());
        }
        if (!n.is_string())
            wrong_type(k, n, table, std::string("a ") + kind + " name or a numeric " + num);
        return id_from_name(n.source(), named(k, table), string(k, n, table, ""), is_group);
    }

    std::uint32_t id_from_name(const toml::source_region& at, const std::string& context, const std::string& name,
                               bool is_group) const {
        const char* kind = is_group ? "group" : "user";
        const char* num = is_group ? "gid" : "uid";
        if (all_digits(name)) {
            std::uint64_t x = 0;
            const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), x);
            if (ec != std::errc{} || end != name.data() + name.size() || x > static_cast<std::uint64_t>(id_max))
                fail(at, context + ": " + num + " " + quote(name) + " is out of range (" + range(0, id_max) + ")");
            return static_cast<std::uint32_t>(x);
        }
        if (name.empty()) fail(at, context + ": empty " + kind + " name (give a " + kind + " name or a " + num + ")");
        int err = 0;
        const std::optional<std::uint32_t> found =
            is_group ? lookup<struct group, gid_t>(name, err, ::getgrnam_r, &group::gr_gid)
                  : lookup<struct passwd, uid_t>(name, err, ::getpwnam_r, &passwd::pw_uid);
        if (found) return *found;
        if (err != 0)
            fail(at, context + ": cannot look up " + kind + " " + quote(name) + ": " + std::strerror(err));
        fail(at, context + ": no " + kind + " named " + quote(name) + " on this system (create it first, or give a " +
                     "numeric " + num + ")");
    }

    // --- Sections -------------------------------------------------------------

    void limits(const toml::key&, const toml::table& t) {
        const std::string name = "[limits]";
        for (const auto& [k, n] : in_file_order(t)) {
            const std::string_view key = k->str();
            if (key == "sessions_per_user") {
                config_.limits.sessions_per_user = static_cast<std::uint32_t>(integer(*k, *n, name, 1, limit_max));
            } else if (key == "semaphores_per_user") {
                config_.limits.semaphores_per_user = static_cast<std::uint32_t>(integer(*k, *n, name, 1, limit_max));
            } else if (key == "waits_per_user") {
                config_.limits.waits_per_user = static_cast<std::uint32_t>(integer(*k, *n, name, 1, limit_max));
            } else if (key == "handles_per_session") {
                config_.limits.handles_per_session = static_cast<std::uint32_t>(integer(*k, *n, name, 1, limit_max));
            } else if (key == "user") {
                users(table(*k, *n, name));
            } else {
                unknown(*k, *n, name,
                        {"sessions_per_user", "semaphores_per_user", "waits_per_user", "handles_per_session",
                         "[limits.user.NAME]"});
            }
        }
    }

    void users(const toml::table& t) {
        std::map<uid_t, std::uint32_t> seen_at;  // uid -> line of its table
        for (const auto& [k, n] : in_file_order(t)) {
            const std::string shown = "[limits.user." + header_key(k->str()) + "]";
            const toml::table* ut = n->as_table();
            if (ut == nullptr)
                fail(n->source(), quote(k->str()) + " in [limits.user] must be a table (write " + shown +
                                      " with sessions, semaphores or waits under it), not " + type_name(n->type()));
            const uid_t uid = id_from_name(k->source(), shown, std::string(k->str()), false);
            if (uid == 0)
                fail(k->source(), shown + ": root (uid 0) is exempt from every limit; remove this table");
            if (auto [it, fresh] = seen_at.emplace(uid, k->source().begin.line); !fresh)
                fail(k->source(), shown + ": uid " + std::to_string(uid) + " already has limits (line " +
                                      std::to_string(it->second) + "); merge the two tables");
            UserLimits ul;
            for (const auto& [uk, un] : in_file_order(*ut)) {
                const std::string_view key = uk->str();
                if (key == "sessions") {
                    ul.sessions = static_cast<std::uint32_t>(integer(*uk, *un, shown, 1, limit_max));
                } else if (key == "semaphores") {
                    ul.semaphores = static_cast<std::uint32_t>(integer(*uk, *un, shown, 1, limit_max));
                } else if (key == "waits") {
                    ul.waits = static_cast<std::uint32_t>(integer(*uk, *un, shown, 1, limit_max));
                } else {
                    unknown(*uk, *un, shown, {"sessions", "semaphores", "waits"});
                }
            }
            config_.user_limits[uid] = ul;
        }
    }

    void create(const toml::key&, const toml::table& t) {
        const std::string name = "[create]";
        const toml::key* lists = nullptr;  // the first of users/groups, for the anyone check
        for (const auto& [k, n] : in_file_order(t)) {
            const std::string_view key = k->str();
            if (key == "anyone") {
                config_.create.anyone = boolean(*k, *n, name);
            } else if (key == "users" || key == "groups") {
                const bool is_group = key == "groups";
                const toml::array* a = n->as_array();
                if (a == nullptr)
                    wrong_type(*k, *n, name,
                               std::string("an array of ") + (is_group ? "group names or gids" : "user names or uids"));
                auto& ids = is_group ? config_.create.groups : config_.create.users;
                for (const toml::node& e : *a) {
                    const std::uint32_t x = id(*k, e, name, is_group);
                    if (std::find(ids.begin(), ids.end(), x) == ids.end()) ids.push_back(x);
                }
                if (lists == nullptr) lists = k;
            } else {
                unknown(*k, *n, name, {"anyone", "users", "groups"});
            }
        }
        if (lists != nullptr && config_.create.anyone)
            fail(lists->source(), quote(lists->str()) + " in [create] has no effect while anyone = true (the " +
                                      "default): set anyone = false to let only root and the listed users and " +
                                      "groups create semaphores, or remove " + quote(lists->str()));
    }

    void semaphores(const toml::key& k, const toml::node& n) {
        const toml::array* a = n.as_array();
        if (a == nullptr) {
            if (n.is_table())
                fail(k.source(), "[semaphore] must be written [[semaphore]] (an array of tables, one per semaphore)");
            wrong_type(k, n, "", "an array of tables ([[semaphore]], one per semaphore)");
        }
        std::map<std::string, std::uint32_t, std::less<>> lines;  // name -> line
        std::size_t index = 0;
        for (const toml::node& e : *a) {
            ++index;
            const std::string name = "[[semaphore]] #" + std::to_string(index);
            const toml::table* t = e.as_table();
            if (t == nullptr)
                fail(e.source(), name + " must be a table with name and permits, not " + type_name(e.type()));
            Declared d;
            d.mode = 0600;
            const toml::key* name_key = nullptr;
            bool have_permits = false;
            for (const auto& [sk, sn] : in_file_order(*t)) {
                const std::string_view key = sk->str();
                if (key == "name") {
                    d.name = string(*sk, *sn, name, "a string (the semaphore's name)");
                    if (!ipc::proto::valid_name(d.name))
                        fail(sn->source(), "'name' in " + name + " = " + quote(d.name) +
                                               " is not a valid semaphore name (1 to 32 characters of "
                                               "A-Za-z0-9._-, not starting with '.')");
                    name_key = sk;
                } else if (key == "permits") {
                    d.permits = static_cast<std::uint32_t>(integer(*sk, *sn, name, 1, permits_max));
                    have_permits = true;
                } else if (key == "owner") {
                    d.owner = id(*sk, *sn, name, false);
                } else if (key == "group") {
                    d.group = id(*sk, *sn, name, true);
                } else if (key == "mode") {
                    d.mode = mode(*sk, *sn, name);
                } else {
                    unknown(*sk, *sn, name, {"name", "permits", "owner", "group", "mode"});
                }
            }
            if (name_key == nullptr) fail(t->source(), name + " has no 'name' (required)");
            if (!have_permits)
                fail(t->source(), name + " (" + quote(d.name) + ") has no 'permits' (required: " +
                                      range(1, permits_max) + ")");
            if (auto [it, fresh] = lines.emplace(d.name, name_key->source().begin.line); !fresh)
                fail(name_key->source(), "duplicate semaphore " + quote(d.name) + " (first declared at line " +
                                             std::to_string(it->second) + "): names must be unique");
            config_.semaphores.push_back(std::move(d));
        }
    }

    std::uint32_t mode(const toml::key& k, const toml::node& n, const std::string& table) const {
        if (const auto* v = n.as_integer()) {
            const std::int64_t x = v->get();
            if (x < 0 || x > 0777)
                fail(n.source(), named(k, table) + " = " + std::to_string(x) +
                                     " is out of range (0 .. 0o777); write the mode in octal, as \"0660\" or "
                                     "0o660");
            // A decimal 440 would be 0o670: a trap, so decimal is refused
            // unless it means the same in octal.
            if (v->flags() == toml::value_flags::none && x >= 8)
                fail(n.source(), named(k, table) + " = " + std::to_string(x) +
                                     " is a decimal integer; write the mode in octal, as a string like \"0660\" "
                                     "or an integer like 0o660");
            return static_cast<std::uint32_t>(x);
        }
        const std::string s = string(k, n, table, "an octal string such as \"0660\", or an integer");
        std::uint32_t m = 0;
        const bool octal = !s.empty() && s.size() <= 4 &&
                           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '7'; });
        if (octal)
            for (char c : s) m = m * 8 + static_cast<std::uint32_t>(c - '0');
        if (!octal || m > 0777)
            fail(n.source(), named(k, table) + " = " + quote(s) +
                                 " is not an octal mode (0 .. 0777, written like \"0660\")");
        return m;
    }

    const std::string& source_;
    Config config_;
};

}  // namespace

Config parse_config(std::string_view text, const std::string& source) {
    try {
        toml::table root;
        try {
            root = toml::parse(text, source);
        } catch (const toml::parse_error& e) {
            std::string msg = source;
            if (e.source().begin.line != 0)
                msg += ":" + std::to_string(e.source().begin.line) + ":" + std::to_string(e.source().begin.column);
            throw ConfigError(msg + ": " + one_line(e.description()) + " (this is not valid TOML)");
        }
        return Parser(source).parse(root);
    } catch (const ConfigError&) {
        throw;
    } catch (const std::bad_alloc&) {
        throw ConfigError(source + ": out of memory");
    } catch (const std::exception& e) {
        throw ConfigError(source + ": " + one_line(e.what()));
    }
}

Config load_config(const std::string& path) {
    using ipc::detail::retry_eintr;
    ipc::detail::UniqueFd fd(retry_eintr([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); }));
    if (!fd) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
    std::string text;
    char buf[16384];
    for (;;) {
        const ssize_t r = retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
        if (r < 0) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
        if (r == 0) break;
        text.append(buf, static_cast<std::size_t>(r));
        if (text.size() > file_max)
            throw ConfigError(path + ": too large (more than " + std::to_string(file_max) +
                              " bytes); is this the configuration file?");
    }
    return parse_config(text, path);
}

}  // namespace ipcd
