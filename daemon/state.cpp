// daemon/state.cpp - see state.hpp.
#include "state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <set>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

#include "sys.hpp"

namespace ipcd {

using nlohmann::json;

namespace {
constexpr const char* format_name = "ipcd-state";
constexpr int format_version = 1;

void write_all(int fd, const std::string& data, const std::string& path) {
    for (std::size_t off = 0; off < data.size();) {
        const ssize_t w = ipc::detail::retry_eintr([&] { return ::write(fd, data.data() + off, data.size() - off); });
        if (w < 0) throw ipc::detail::errno_error("write state file " + path);
        off += static_cast<std::size_t>(w);
    }
}
// nlohmann's get<unsigned>() wraps -1 and truncates 1.5 without a word
// (and a huge double is UB): only a non-negative integer within `max` is
// a value here.
std::uint64_t unsigned_field(const json& e, const char* key, std::uint64_t max) {
    const json& v = e.at(key);
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
        throw std::runtime_error(std::string("'") + key + "' is not a non-negative integer");
    const auto n = v.get<std::uint64_t>();
    if (n > max) throw std::runtime_error(std::string("'") + key + "' is out of range");
    return n;
}
}  // namespace

std::vector<Definition> load_state(const std::string& path) {
    ipc::detail::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno == ENOENT) return {};
        throw std::runtime_error("cannot read state file " + path + ": " + std::generic_category().message(errno));
    }
    std::string text;
    char buf[8192];
    for (;;) {
        const ssize_t n = ipc::detail::retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
        if (n < 0)
            throw std::runtime_error("cannot read state file " + path + ": " + std::generic_category().message(errno));
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    std::vector<Definition> defs;
    std::set<std::string, std::less<>> names;
    try {
        if (text.empty()) throw std::runtime_error("the file is empty (truncated?)");
        const json doc = json::parse(text);
        if (!doc.is_object() || doc.value("format", std::string{}) != format_name ||
            doc.value("version", 0) != format_version)
            throw std::runtime_error("not an ipcd state file of version " + std::to_string(format_version));
        for (const json& e : doc.at("semaphores")) {
            Definition d;
            d.name = e.at("name").get<std::string>();
            d.permits = static_cast<std::uint32_t>(unsigned_field(e, "permits", UINT32_MAX));
            d.owner = static_cast<uid_t>(unsigned_field(e, "owner", UINT32_MAX));
            d.group = static_cast<gid_t>(unsigned_field(e, "group", UINT32_MAX));
            d.mode = static_cast<std::uint32_t>(unsigned_field(e, "mode", 0777));
            // Far from the top, so that granting and reserving never wrap.
            d.last_token = unsigned_field(e, "token", std::uint64_t{1} << 62);
            if (!ipc::proto::valid_name(d.name) || d.permits == 0 || d.mode > 0777)
                throw std::runtime_error("invalid semaphore entry '" + d.name + "'");
            if (!names.insert(d.name).second) throw std::runtime_error("semaphore '" + d.name + "' appears twice");
            defs.push_back(std::move(d));
        }
    } catch (const std::exception& e) {  // json::exception or ours
        throw StateCorrupt("state file " + path + " is corrupt: " + e.what());
    }
    return defs;
}

std::string move_aside(const std::string& path) {
    const std::string base = path + ".corrupt-" + std::to_string(::time(nullptr));
    for (int n = 0;; ++n) {
        const std::string to = n == 0 ? base : base + "." + std::to_string(n);
        // Never replacing an earlier copy of the same second: rename with
        // RENAME_NOREPLACE, or link + unlink where the file system lacks it.
        if (::renameat2(AT_FDCWD, path.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return to;
        if (errno == EINVAL || errno == ENOSYS) {
            if (::link(path.c_str(), to.c_str()) == 0) {
                if (::unlink(path.c_str()) != 0)
                    throw ipc::detail::errno_error("remove " + path + " after copying it to " + to);
                return to;
            }
        }
        if (errno != EEXIST || n >= 100) throw ipc::detail::errno_error("move " + path + " aside to " + to);
    }
}

void save_state(const std::string& path, const std::vector<Definition>& defs) {
    json doc = {{"format", format_name}, {"version", format_version}, {"semaphores", json::array()}};
    for (const Definition& d : defs)
        doc["semaphores"].push_back({{"name", d.name},
                                     {"permits", d.permits},
                                     {"owner", d.owner},
                                     {"group", d.group},
                                     {"mode", d.mode},
                                     {"token", d.last_token}});
    const std::string tmp = path + ".tmp";
    ipc::detail::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw ipc::detail::errno_error("create " + tmp);
    write_all(fd.get(), doc.dump(2) + "\n", tmp);
    if (::fsync(fd.get()) != 0) throw ipc::detail::errno_error("fsync " + tmp);
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw ipc::detail::errno_error("rename " + tmp + " to " + path);
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    ipc::detail::UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd) (void)::fsync(dfd.get());  // best effort: the rename is already atomic
}

}  // namespace ipcd
