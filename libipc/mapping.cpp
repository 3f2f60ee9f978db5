// libipc/mapping.cpp - memfd and fd mappings.
#include "ipc/mapping.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "sys.hpp"

namespace ipc {

Mapping::Mapping(void* data, std::size_t size, int fd, std::shared_ptr<void> owner) noexcept
    : data_(data), size_(size), fd_(fd), owner_(std::move(owner)) {}

Mapping::~Mapping() {
    if (owner_) return;  // the owner unmaps and closes
    if (data_) ::munmap(data_, size_);
    if (fd_ >= 0) ::close(fd_);
}

std::shared_ptr<Mapping> Mapping::create_memfd(const char* name, std::size_t size, bool seal) {
    if (size == 0) throw std::system_error(EINVAL, std::generic_category(), "create memfd: size must not be 0");
    detail::UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) throw detail::errno_error("create memfd '" + std::string(name) + "'");
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
        throw detail::errno_error("size memfd '" + std::string(name) + "' to " + std::to_string(size) + " bytes");
    if (seal && ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        throw detail::errno_error("seal memfd '" + std::string(name) + "'");
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) throw detail::errno_error("map memfd '" + std::string(name) + "'");
    return std::make_shared<Mapping>(p, size, fd.release(), nullptr);
}

std::shared_ptr<Mapping> Mapping::map_fd(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw detail::errno_error("inspect descriptor " + std::to_string(fd));
    if (!S_ISREG(st.st_mode) || st.st_size <= 0)
        throw std::system_error(EINVAL, std::generic_category(),
                                "map descriptor " + std::to_string(fd) +
                                    ": not a non-empty shared-memory file; pass the channel's memfd");
    detail::UniqueFd own(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!own) throw detail::errno_error("duplicate descriptor " + std::to_string(fd));
    const auto size = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, own.get(), 0);
    if (p == MAP_FAILED) throw detail::errno_error("map descriptor " + std::to_string(fd));
    return std::make_shared<Mapping>(p, size, own.release(), nullptr);
}

}  // namespace ipc
