// fuzz/config_fuzz.cpp - ipcd's configuration parser (daemon/config.hpp), fuzzed.
//
// parse_config() promises to throw ipcd::ConfigError and nothing else, for
// any text: anything else escaping it (std::out_of_range, a toml++ error,
// std::bad_alloc, ...) is a bug, and so is any crash or sanitizer report.
// A parsed Config is checked against the documented ranges too, since
// the daemon applies it without checking again:
//   limits in 1 .. 2^20, permits in 1 .. 2^31-1, mode <= 0777, names
//   valid and unique, spin_us <= 10000, paths absolute.
// CONFIG_FUZZ_ALLOW_MULTILINE=1 in the environment tolerates control
// characters (line breaks, escapes) in a ConfigError message (an open
// finding, docs/fuzzing.md), so a long run can look past it. The input is the file's text; the seeds are etc/ipcd.conf
// and snippets of every section (fuzz/corpus/config), the dictionary is fuzz/config.dict.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <set>
#include <string>
#include <string_view>

#include "config.hpp"
#include "ipc/protocol.hpp"

namespace {

[[noreturn]] void violation(const char* what, const char* detail) {
    std::fprintf(stderr, "config_fuzz: %s: %s\n", what, detail);
    std::abort();
}

void check_limit(std::uint32_t v, const char* what) {
    if (v < 1 || v > (1u << 20)) violation("limit out of 1 .. 2^20 accepted", what);
}

void check(const ipcd::Config& c) {
    check_limit(c.limits.sessions_per_user, "sessions_per_user");
    check_limit(c.limits.semaphores_per_user, "semaphores_per_user");
    check_limit(c.limits.waits_per_user, "waits_per_user");
    check_limit(c.limits.handles_per_session, "handles_per_session");
    for (const auto& [uid, u] : c.user_limits) {
        if (u.sessions) check_limit(*u.sessions, "user sessions");
        if (u.semaphores) check_limit(*u.semaphores, "user semaphores");
        if (u.waits) check_limit(*u.waits, "user waits");
    }
    if (c.spin_us && *c.spin_us > 10000) violation("spin_us out of range accepted", "spin_us");
    if (!c.socket_path.empty() && (c.socket_path.front() != '/' || c.socket_path.size() > 107))
        violation("bad socket path accepted", c.socket_path.c_str());
    if (!c.state_dir.empty() && c.state_dir.front() != '/')
        violation("relative state_dir accepted", c.state_dir.c_str());
    std::set<std::string> names;
    for (const ipcd::Declared& d : c.semaphores) {
        if (!ipc::proto::valid_name(d.name)) violation("invalid semaphore name accepted", d.name.c_str());
        if (!names.insert(d.name).second) violation("duplicate semaphore name accepted", d.name.c_str());
        if (d.permits < 1 || d.permits > 0x7FFFFFFFu) violation("permits out of range accepted", d.name.c_str());
        if (d.mode > 0777) violation("mode above 0777 accepted", d.name.c_str());
        if (d.owner == static_cast<uid_t>(-1) || d.group == static_cast<gid_t>(-1))
            violation("owner or group -1 accepted", d.name.c_str());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        check(ipcd::parse_config(text, "fuzz.conf"));
    } catch (const ipcd::ConfigError& e) {
        // The documented failure. Its message is one line.
        const std::string_view what = e.what();
        static const bool allow_multiline = std::getenv("CONFIG_FUZZ_ALLOW_MULTILINE") != nullptr;
        if (what.empty()) violation("ConfigError with an empty message", "");
        // One line, and no control character a hostile file could use to
        // forge log lines or terminal escapes (config.cpp quotes what it echoes).
        const bool control = std::any_of(what.begin(), what.end(), [](char ch) {
            const auto c = static_cast<unsigned char>(ch);
            return c < 0x20 || c == 0x7f;
        });
        if (!allow_multiline && control) violation("ConfigError message is not one line of text", e.what());
    } catch (const std::exception& e) {
        violation("parse_config threw something other than ConfigError", e.what());
    } catch (...) {
        violation("parse_config threw something other than ConfigError", "(not a std::exception)");
    }
    return 0;
}
