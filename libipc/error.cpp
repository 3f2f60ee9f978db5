// libipc/error.cpp - the ipc::errc category and Status names.
#include "ipc/channel.hpp"
#include "ipc/error.hpp"

namespace ipc {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "ipc"; }
    std::string message(int c) const override {
        switch (static_cast<errc>(c)) {
            case errc::not_a_channel:
                return "not an ipc channel (bad magic): the segment belongs to something else; pick another "
                       "name or remove it";
            case errc::version_mismatch:
                return "channel layout version mismatch: it was created by an incompatible libipc; recreate "
                       "it with this version";
            case errc::bad_geometry:
                return "channel header is inconsistent (kind, capacity or slot size): the segment is corrupt; "
                       "remove and recreate it";
            case errc::truncated:
                return "segment is smaller than its channel header says (truncated): remove and recreate it";
            case errc::not_initialized:
                return "channel is not initialised yet (its creator has not finished or died while creating "
                       "it): retry, or remove it";
            case errc::invalid_capacity:
                return "invalid capacity: use a power of two from 1 to 16777216";
            case errc::invalid_name:
                return "invalid channel name: use 1-200 characters of A-Z a-z 0-9 . _ - not starting with '.'";
            case errc::membarrier_unavailable:
                return "membarrier(2) is unavailable: allow it in the seccomp filter";
        }
        return "unknown ipc error";
    }
};

}  // namespace

const std::error_category& category() noexcept {
    static const Category c;
    return c;
}

const char* to_string(Status s) noexcept {
    switch (s) {
        case Status::ok: return "ok";
        case Status::would_block: return "would block";
        case Status::timed_out: return "timed out";
        case Status::closed: return "closed";
        case Status::corrupted: return "corrupted";
    }
    return "unknown";
}

}  // namespace ipc
