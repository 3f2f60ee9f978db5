// ipc/mapping.hpp - a shared-memory mapping owned by this process.
//
// A Mapping is the per-process handle on a shared segment: the descriptor
// (if any), the address this process mapped it at, and its size. Channels keep
// their Mapping alive through a shared_ptr, so several channels can live in
// one segment (the ipcd session memfd holds two).
#pragma once

#include <cstddef>
#include <memory>

namespace ipc {

class Mapping {
public:
    // A new memfd of `size` bytes, zero-filled, O_CLOEXEC. With `seal`, the
    // size is sealed (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) so a peer
    // that receives the descriptor cannot truncate it under our feet.
    // Throws std::system_error.
    static std::shared_ptr<Mapping> create_memfd(const char* name, std::size_t size, bool seal = true);

    // Maps the whole of `fd` read-write, shared. The descriptor is duplicated
    // (O_CLOEXEC); the caller keeps its own. Throws std::system_error
    // (EINVAL for an empty or non-regular file).
    static std::shared_ptr<Mapping> map_fd(int fd);

    // Adopts an existing mapping. `owner` is released (after munmap of
    // nothing: the owner unmaps) when the Mapping dies; used for segments
    // mapped by Boost.Interprocess.
    Mapping(void* data, std::size_t size, int fd, std::shared_ptr<void> owner) noexcept;
    ~Mapping();
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;

    void* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    // The descriptor (O_CLOEXEC) or -1.
    int fd() const noexcept { return fd_; }

private:
    void* data_;
    std::size_t size_;
    int fd_;
    std::shared_ptr<void> owner_;  // null: data_ is our own mmap and fd_ our own descriptor
};

}  // namespace ipc
