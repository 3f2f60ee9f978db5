// daemon/config.hpp - ipcd's configuration file (TOML): parsing and
// validation into a Config, with nothing applied. The server decides what
// a value means at start and on reload (docs/operations.md, "Configuration
// reference").
//
// The file (every key optional; an empty file is all defaults):
//
//   socket = "/run/ipcd/ipcd.sock"    # absolute path, at most 107 bytes
//   state_dir = "/var/lib/ipcd"       # absolute path
//   spin_us = 50                      # 0 .. 10000
//
//   [limits]                          # per uid, root exempt; 1 .. 2^20 each
//   sessions_per_user = 64
//   semaphores_per_user = 256
//   waits_per_user = 1024
//   handles_per_session = 4096
//
//   [limits.user.alice]               # user name or numeric uid ("1000")
//   sessions = 8                      # any of sessions, semaphores, waits
//
//   [create]
//   anyone = true                     # false: only root and those below
//   users = ["alice", 1001]           # names or uids (only with anyone = false)
//   groups = ["ipc-admins", 1002]     # names or gids (only with anyone = false)
//
//   [[semaphore]]                     # any number, names unique
//   name = "db-writers"               # ipc::proto::valid_name
//   permits = 3                       # 1 .. 2^31-1, required
//   owner = "postgres"                # name or uid; default 0
//   group = "postgres"                # name or gid; default 0
//   mode = "0660"                     # octal string, or octal integer 0o660; default "0600"
//
// Strictness: an unknown key or table, a value of the wrong type, a value
// out of range, a user or group that does not exist, or a duplicate is an
// error, reported with its position so a typo never silently leaves a
// default in force. A user or group given as a string of digits is a
// numeric id (not looked up). An integer mode must be written in octal
// (0o660): a decimal 440 would silently mean 0o670.
//
// Errors are ConfigError, whose what() is one line:
//   "FILE:LINE:COLUMN: what is wrong (what to do)", or "FILE: ..." when no
// position applies. FILE is the `source` given to parse_config().
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "semaphore_table.hpp"

namespace ipcd {

struct Config {
    std::string socket_path;          // "" : not set (CLI / default applies)
    std::string state_dir;            // "" : not set
    std::optional<unsigned> spin_us;  // not set: CLI / default
    Limits limits;                    // defaults for every uid (fields not in the file keep Limits{} defaults)
    std::map<uid_t, UserLimits> user_limits;
    CreatePolicy create;              // default: anyone
    std::vector<Declared> semaphores; // in file order, names unique
};

class ConfigError : public std::runtime_error {
public:
    using runtime_error::runtime_error;
};

// Parses TOML text. `source` names it in errors. Resolves user and group
// names with getpwnam_r/getgrnam_r (so it may block on NSS; call it at
// start or on reload, never while serving). Throws ConfigError and nothing
// else (std::bad_alloc included, as "out of memory"). Any thread.
Config parse_config(std::string_view text, const std::string& source);

// Reads and parses FILE (at most 1 MiB). Throws ConfigError: "FILE: cannot
// read: <strerror>" if it cannot be read, else as parse_config().
Config load_config(const std::string& path);

}  // namespace ipcd
