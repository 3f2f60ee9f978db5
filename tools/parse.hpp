// tools/parse.hpp - strict parsing of ipcctl's option values.
//
// util-linux style: a value is accepted only if all of it is well formed.
// No signs, no surrounding blanks, no trailing garbage ("3x"), no hex, no
// silent wrap-around. Each parser throws UsageError with a one-line message
// that names the option and says what is accepted; ipcctl turns it into
// exit code 2.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ipcctl {

// A mistake in the command line: bad option value, missing argument, ...
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A decimal whole number in [min, max]. `what` names the option in the
// message ("--permits").
std::uint64_t parse_uint(std::string_view text, std::string_view what, std::uint64_t min, std::uint64_t max);

// --permits, --count: 1 .. 4294967295.
std::uint32_t parse_count(std::string_view text, std::string_view what);

// --mode: octal digits only (a leading 0 is optional), at most 0777. The
// set-id and sticky bits mean nothing for a semaphore and are refused.
mode_t parse_mode(std::string_view text);

// --timeout: non-negative decimal seconds with up to nine decimals
// ("10", "0.25", "1.5"), at most 9223372036 (what fits in int64 nanoseconds).
// 0 means "do not wait".
std::chrono::nanoseconds parse_timeout(std::string_view text);

// A semaphore name: 1-32 bytes of [A-Za-z0-9._-], not starting with '.'.
// Returns `text` unchanged or throws.
std::string parse_name(std::string_view text);

// A channel name (ipc/channel.hpp): 1-200 bytes of [A-Za-z0-9._-], not
// starting with '.'. Returns `text` unchanged or throws.
std::string parse_channel_name(std::string_view text);

// A session id (release-session): 1 .. 4294967295.
std::uint32_t parse_session_id(std::string_view text);

// --user: a user name from the passwd database, or a numeric uid (digits
// only, below 4294967295). Throws UsageError for an unknown name.
uid_t parse_user(std::string_view text);

}  // namespace ipcctl
