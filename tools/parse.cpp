// tools/parse.cpp - strict parsing of ipcctl's option values (parse.hpp).
#include "parse.hpp"

#include <pwd.h>
#include <unistd.h>

#include <limits>
#include <system_error>
#include <vector>

#include "ipc/channel.hpp"
#include "ipc/protocol.hpp"

namespace ipcctl {
namespace {

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

}  // namespace

std::uint64_t parse_uint(std::string_view text, std::string_view what, std::uint64_t min, std::uint64_t max) {
    auto bad = [&] {
        return UsageError("invalid " + std::string(what) + " value " + quoted(text) + ": expected a whole number from " +
                          std::to_string(min) + " to " + std::to_string(max));
    };
    if (text.empty()) throw bad();
    std::uint64_t v = 0;
    for (char c : text) {
        if (!is_digit(c)) throw bad();
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) throw bad();  // would overflow
        v = v * 10 + d;
    }
    if (v < min || v > max) throw bad();
    return v;
}

std::uint32_t parse_count(std::string_view text, std::string_view what) {
    return static_cast<std::uint32_t>(parse_uint(text, what, 1, std::numeric_limits<std::uint32_t>::max()));
}

mode_t parse_mode(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return UsageError("invalid --mode value " + quoted(text) + ": " + std::string(why));
    };
    if (text.empty()) throw bad("expected octal permission bits such as 0600 or 640");
    unsigned v = 0;
    for (char c : text) {
        if (c < '0' || c > '7') throw bad("expected octal permission bits (digits 0-7) such as 0600 or 640");
        v = v * 8 + static_cast<unsigned>(c - '0');
        if (v > 0777) throw bad("at most 0777 (set-id and sticky bits mean nothing for a semaphore)");
    }
    return static_cast<mode_t>(v);
}

std::chrono::nanoseconds parse_timeout(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return UsageError("invalid --timeout value " + quoted(text) + ": " + std::string(why));
    };
    constexpr std::string_view expected = "expected seconds such as 10, 0.5 or 0 (do not wait)";
    constexpr std::uint64_t max_seconds = std::numeric_limits<std::int64_t>::max() / 1'000'000'000;
    const auto dot = text.find('.');
    const auto whole = text.substr(0, dot);
    const auto frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
    if (whole.empty() && frac.empty()) throw bad(expected);
    if (dot != std::string_view::npos && frac.empty()) throw bad(expected);  // "1."
    std::uint64_t seconds = 0;
    for (char c : whole) {
        if (!is_digit(c)) throw bad(expected);
        seconds = seconds * 10 + static_cast<std::uint64_t>(c - '0');
        if (seconds > max_seconds) throw bad("at most " + std::to_string(max_seconds) + " seconds");
    }
    if (frac.size() > 9) throw bad("at most nine decimals (nanoseconds)");
    std::uint64_t nanos = 0;
    for (std::size_t i = 0; i < 9; ++i) {
        char c = i < frac.size() ? frac[i] : '0';
        if (!is_digit(c)) throw bad(expected);
        nanos = nanos * 10 + static_cast<std::uint64_t>(c - '0');
    }
    const std::uint64_t total = seconds * 1'000'000'000 + nanos;
    if (total > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        throw bad("at most " + std::to_string(max_seconds) + " seconds");
    return std::chrono::nanoseconds(static_cast<std::int64_t>(total));
}

std::string parse_name(std::string_view text) {
    if (!ipc::proto::valid_name(text))
        throw UsageError("invalid semaphore name " + quoted(text) + ": use 1-" + std::to_string(ipc::proto::name_max) +
                         " characters of A-Z a-z 0-9 . _ - not starting with '.'");
    return std::string(text);
}

std::string parse_channel_name(std::string_view text) {
    try {
        (void)ipc::Channel::shm_path(text);  // checks the name rules
    } catch (const std::system_error&) {
        throw UsageError("invalid channel name " + quoted(text) +
                         ": use 1-200 characters of A-Z a-z 0-9 . _ - not starting with '.'");
    }
    return std::string(text);
}

std::uint32_t parse_session_id(std::string_view text) {
    return static_cast<std::uint32_t>(
        parse_uint(text, "session ID", 1, std::numeric_limits<std::uint32_t>::max()));
}

uid_t parse_user(std::string_view text) {
    if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos)
        return static_cast<uid_t>(
            parse_uint(text, "--user", 0, std::numeric_limits<std::uint32_t>::max() - 1));  // -1 is no uid
    const std::string name(text);
    const long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(hint > 0 ? static_cast<std::size_t>(hint) : 16384);
    passwd pw{};
    passwd* out = nullptr;
    int rc;
    while ((rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &out)) == ERANGE && buf.size() < (1u << 20))
        buf.resize(buf.size() * 2);
    if (text.empty() || rc != 0 || out == nullptr)
        throw UsageError("unknown user " + quoted(text) + " in --user: give a user name or a numeric uid");
    return out->pw_uid;
}

}  // namespace ipcctl
