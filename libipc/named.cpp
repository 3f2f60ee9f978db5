// libipc/named.cpp - named channels in POSIX shared memory, through
// Boost.Interprocess (shared_memory_object + mapped_region).
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <thread>

#include "ipc/channel.hpp"

namespace ipc {

namespace bi = boost::interprocess;

namespace {

constexpr std::string_view name_prefix = "ipc.";

std::string checked_shm_name(std::string_view name) {
    bool ok = !name.empty() && name.size() <= 200 && name.front() != '.';
    for (char c : name)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-');
    if (!ok) throw std::system_error(errc::invalid_name, "channel '" + std::string(name) + "'");
    return std::string(name_prefix) + std::string(name);
}

// Boost reports the errno it saw; keep it so callers can tell ENOENT from
// EACCES, and say which channel and what to do.
[[noreturn]] void rethrow(const bi::interprocess_exception& e, std::string_view verb, std::string_view name) {
    int err = e.get_native_error();
    if (err == 0) err = e.get_error_code() == bi::already_exists_error ? EEXIST
                        : e.get_error_code() == bi::not_found_error  ? ENOENT
                        : e.get_error_code() == bi::security_error   ? EACCES
                                                                     : EIO;
    std::string ctx = std::string(verb) + " channel '" + std::string(name) + "' (/dev/shm/" +
                      std::string(name_prefix) + std::string(name) + ")";
    if (err == ENOENT) ctx += ": no such channel; create it first";
    if (err == EEXIST) ctx += ": a channel of that name exists; open it or remove it";
    if (err == EACCES) ctx += ": permission denied; check its owner and mode with ls -l";
    throw std::system_error(err, std::generic_category(), ctx);
}

// Keeps the shared-memory object (and its descriptor) and the region alive
// for as long as any Channel on the mapping exists.
struct NamedSegment {
    bi::shared_memory_object object;
    bi::mapped_region region;
};

std::shared_ptr<Mapping> map_named(bi::shared_memory_object&& object) {
    auto seg = std::make_shared<NamedSegment>();
    seg->object = std::move(object);
    seg->region = bi::mapped_region(seg->object, bi::read_write);
    void* data = seg->region.get_address();
    const std::size_t size = seg->region.get_size();
    const int fd = seg->object.get_mapping_handle().handle;
    return std::make_shared<Mapping>(data, size, fd, std::shared_ptr<void>(seg, seg.get()));
}

Channel create_named(std::string_view name, const std::string& shm_name, const ChannelOptions& o) {
    const std::size_t size = Channel::bytes_needed(o);
    std::shared_ptr<Mapping> mapping;
    try {
        bi::shared_memory_object obj(bi::create_only, shm_name.c_str(), bi::read_write,
                                     bi::permissions(static_cast<unsigned>(o.mode)));
        obj.truncate(static_cast<bi::offset_t>(size));
        mapping = map_named(std::move(obj));
    } catch (const bi::interprocess_exception& e) {
        if (e.get_error_code() != bi::already_exists_error && e.get_native_error() != EEXIST)
            bi::shared_memory_object::remove(shm_name.c_str());
        rethrow(e, "create", name);
    }
    try {
        return Channel::create_in(std::move(mapping), 0, o);
    } catch (...) {
        bi::shared_memory_object::remove(shm_name.c_str());
        throw;
    }
}

Channel open_named(std::string_view name, const std::string& shm_name) {
    try {
        bi::shared_memory_object obj(bi::open_only, shm_name.c_str(), bi::read_write);
        bi::offset_t size = 0;
        if (!obj.get_size(size) || size < static_cast<bi::offset_t>(sizeof(shm::ChannelHeader)))
            throw std::system_error(errc::truncated, "open channel '" + std::string(name) + "' (" +
                                                         std::to_string(size) + " bytes)");
        return Channel::open_in(map_named(std::move(obj)), 0);
    } catch (const bi::interprocess_exception& e) {
        rethrow(e, "open", name);
    } catch (const std::system_error& e) {
        if (e.code().category() == category())
            throw std::system_error(e.code(), "open channel '" + std::string(name) + "'");
        throw;
    }
}

}  // namespace

std::string Channel::shm_path(std::string_view name) { return "/dev/shm/" + checked_shm_name(name); }

Channel Channel::create(std::string_view name, const ChannelOptions& o) {
    return create_named(name, checked_shm_name(name), o);
}

Channel Channel::open(std::string_view name) { return open_named(name, checked_shm_name(name)); }

Channel Channel::open_or_create(std::string_view name, const ChannelOptions& o) {
    const std::string shm_name = checked_shm_name(name);
    // Create-or-open loop: exactly one process wins create_only and
    // initialises; the others open, and retry briefly while the winner is
    // between truncate and its magic store (truncated / not_initialized).
    const auto give_up = Clock::now() + std::chrono::seconds(2);
    for (;;) {
        try {
            return create_named(name, shm_name, o);
        } catch (const std::system_error& e) {
            if (e.code() != std::errc::file_exists) throw;
        }
        try {
            return open_named(name, shm_name);
        } catch (const std::system_error& e) {
            const bool racing = e.code() == errc::truncated || e.code() == errc::not_initialized ||
                                e.code() == std::errc::no_such_file_or_directory;
            if (!racing || Clock::now() >= give_up) throw;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

bool Channel::remove(std::string_view name) {
    const std::string shm_name = checked_shm_name(name);
    if (::shm_unlink(shm_name.c_str()) == 0) return true;
    if (errno == ENOENT) return false;
    throw std::system_error(errno, std::generic_category(),
                            "remove channel '" + std::string(name) + "': " +
                                (errno == EACCES ? "permission denied; only its owner or root may remove it"
                                                 : "shm_unlink failed"));
}

}  // namespace ipc
