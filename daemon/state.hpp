// daemon/state.hpp - persistent semaphores on disk.
//
// ipcd keeps the definitions of persistent semaphores (created with
// create_persist, or declared in the configuration file) in
// STATE_DIR/semaphores.json, a small JSON document:
//
//   {"format": "ipcd-state", "version": 1,
//    "semaphores": [{"name": "db", "permits": 3, "owner": 0, "group": 0,
//                    "mode": 384, "token": 65537}, ...]}
//
// "token" is the fencing-token reservation (see SemaphoreTable): tokens
// after a restart start above it. Holders and waiters are never saved: they
// belong to sessions, which end with the daemon.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "semaphore_table.hpp"

namespace ipcd {

// The file's contents are not a valid state (truncated, not JSON, wrong
// format or version, an invalid or duplicated entry): the daemon moves it
// aside and starts without it.
struct StateCorrupt : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Reads FILE; a missing file is an empty state. Throws StateCorrupt for bad
// contents, std::runtime_error if FILE cannot be read; what() has the path
// and the reason.
std::vector<Definition> load_state(const std::string& path);

// Renames a corrupt FILE to FILE.corrupt-<unix time>[.N] (never replacing
// an earlier one) and returns the new name. Throws std::system_error.
std::string move_aside(const std::string& path);

// Replaces FILE atomically (FILE.tmp, fsync, rename, fsync of the
// directory), mode 0600. Throws std::system_error with context.
void save_state(const std::string& path, const std::vector<Definition>& defs);

}  // namespace ipcd
