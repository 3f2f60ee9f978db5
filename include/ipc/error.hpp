// ipc/error.hpp - the project's error codes.
//
// Setup calls (create, open, connect) throw std::system_error carrying either a
// std::generic_category() errno value (ENOENT, EACCES, EEXIST, ...) or one of
// the ipc::errc values below. The data path never throws: it returns
// ipc::Status (see channel.hpp). Every message says what went wrong and what
// to do about it.
#pragma once

#include <string>
#include <system_error>

namespace ipc {

enum class errc {
    not_a_channel = 1,     // the segment does not start with the channel magic
    version_mismatch,      // created by an incompatible layout version
    bad_geometry,          // capacity / slot size / kind in the header are invalid
    truncated,             // the segment is smaller than its header says
    not_initialized,       // the creator has not finished initialising it
    invalid_capacity,      // capacity is not a power of two in range
    invalid_name,          // a channel name breaks the name rules
    membarrier_unavailable,// reserved: the kernel refuses membarrier(2)
};

const std::error_category& category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), category()};
}

}  // namespace ipc

template <>
struct std::is_error_code_enum<ipc::errc> : std::true_type {};
