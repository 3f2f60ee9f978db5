// daemon/state.hpp - persistent semaphores on disk.
//
// With --state FILE, ipcd keeps the definitions of persistent semaphores
// (created with create_persist) in FILE, a small JSON document:
//
//   {"format": "ipcd-state", "version": 1,
//    "semaphores": [{"name": "db", "permits": 3, "owner": 0, "group": 0,
//                    "mode": 384, "token": 65537}, ...]}
//
// "token" is the fencing-token reservation (see SemaphoreTable): tokens
// after a restart start above it. Holders and waiters are never saved: they
// belong to sessions, which end with the daemon.
#pragma once

#include <string>
#include <vector>

#include "semaphore_table.hpp"

namespace ipcd {

// Reads FILE; a missing file is an empty state. Throws std::runtime_error
// (unreadable, not JSON, wrong format or version, invalid entry) with the
// path and the reason in what().
std::vector<Definition> load_state(const std::string& path);

// Replaces FILE atomically (FILE.tmp, fsync, rename, fsync of the
// directory), mode 0600. Throws std::system_error with context.
void save_state(const std::string& path, const std::vector<Definition>& defs);

}  // namespace ipcd
