// Unit tests of ipcd's configuration file parser (daemon/config.hpp): the
// shipped sample, every key's default and range, every validation error with
// its position, user and group resolution, and reading files. No daemon.
#include "config.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace {

using ipcd::Config;
using ipcd::ConfigError;
using ipcd::parse_config;

constexpr const char* src = "test.conf";
// A name no account database has: NSS names may not contain ':' ... but
// getpwnam accepts any string, so use one that is also far too long.
const std::string no_such_name = "no-such-account-ipcd-config-test-xyzzy";

Config parse(const std::string& text) { return parse_config(text, src); }

// The message of the ConfigError that parsing `text` throws ("" if none).
std::string error_of(const std::string& text) {
    try {
        parse(text);
    } catch (const ConfigError& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("unexpected exception type: ") + e.what();
    }
    return "";
}

// Parsing `text` fails at `line` (column unchecked) with a message holding
// every one of `parts`.
void expect_error(const std::string& text, unsigned line, std::initializer_list<std::string> parts) {
    const std::string msg = error_of(text);
    SCOPED_TRACE("text:\n" + text + "\nerror: " + msg);
    ASSERT_FALSE(msg.empty()) << "parsed without error";
    const std::string prefix = std::string(src) + ":" + std::to_string(line) + ":";
    EXPECT_EQ(msg.rfind(prefix, 0), 0u) << "expected to start with " << prefix;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "expected to contain: " << p;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line";
}

uid_t uid_of(const char* name) {
    const passwd* p = ::getpwnam(name);
    return p ? p->pw_uid : static_cast<uid_t>(-1);
}
gid_t gid_of(const char* name) {
    const group* g = ::getgrnam(name);
    return g ? g->gr_gid : static_cast<gid_t>(-1);
}

void expect_defaults(const Config& c) {
    const ipcd::Limits d;
    EXPECT_EQ(c.socket_path, "");
    EXPECT_EQ(c.state_dir, "");
    EXPECT_FALSE(c.spin_us.has_value());
    EXPECT_EQ(c.limits.sessions_per_user, d.sessions_per_user);
    EXPECT_EQ(c.limits.semaphores_per_user, d.semaphores_per_user);
    EXPECT_EQ(c.limits.waits_per_user, d.waits_per_user);
    EXPECT_EQ(c.limits.handles_per_session, d.handles_per_session);
    EXPECT_EQ(c.limits.sessions_per_user, 64u);
    EXPECT_EQ(c.limits.semaphores_per_user, 256u);
    EXPECT_EQ(c.limits.waits_per_user, 1024u);
    EXPECT_EQ(c.limits.handles_per_session, 4096u);
    EXPECT_TRUE(c.user_limits.empty());
    EXPECT_TRUE(c.create.anyone);
    EXPECT_TRUE(c.create.users.empty());
    EXPECT_TRUE(c.create.groups.empty());
    EXPECT_TRUE(c.semaphores.empty());
}

std::string read_file(const char* path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// --- Defaults and the sample -----------------------------------------------

TEST(ConfigDefaults, EmptyFileIsAllDefaults) { expect_defaults(parse("")); }

TEST(ConfigDefaults, CommentsAndEmptyTablesAreAllDefaults) {
    expect_defaults(parse("# nothing\n\n[limits]\n# still nothing\n[create]\n"));
}

TEST(ConfigDefaults, EachKeyAloneLeavesTheOthersAtTheirDefault) {
    const Config c = parse("[limits]\nwaits_per_user = 7\n");
    EXPECT_EQ(c.limits.waits_per_user, 7u);
    EXPECT_EQ(c.limits.sessions_per_user, 64u);
    EXPECT_EQ(c.limits.semaphores_per_user, 256u);
    EXPECT_EQ(c.limits.handles_per_session, 4096u);
    EXPECT_FALSE(c.spin_us.has_value());
}

TEST(ConfigSample, ShippedSampleParsesToTheDefaults) {
    // Everything in etc/ipcd.conf is commented out: installing it changes nothing.
    expect_defaults(ipcd::load_config(IPCD_SAMPLE_CONFIG));
}

// Every commented-out setting of the sample, uncommented, is valid and
// means what its comment says.
TEST(ConfigSample, UncommentedSampleParses) {
    std::istringstream sample(read_file(IPCD_SAMPLE_CONFIG));
    std::string text;
    for (std::string line; std::getline(sample, line);) {
        if (std::regex_search(line, std::regex("^#[a-z_\\[]"))) line.erase(0, 1);  // a setting, not prose
        text += line + "\n";
    }
    text = std::regex_replace(text, std::regex("anyone = true"), "anyone = false");  // users/groups need it
    ASSERT_NE(text.find("\nsocket = "), std::string::npos) << text;
    ASSERT_NE(text.find("\n[[semaphore]]"), std::string::npos) << text;
    const Config c = parse(text);
    EXPECT_EQ(c.socket_path, "/run/ipcd/ipcd.sock");
    EXPECT_EQ(c.state_dir, "/var/lib/ipcd");
    EXPECT_EQ(c.spin_us, 50u);
    EXPECT_EQ(c.limits.sessions_per_user, 64u);
    EXPECT_EQ(c.limits.semaphores_per_user, 256u);
    EXPECT_EQ(c.limits.waits_per_user, 1024u);
    EXPECT_EQ(c.limits.handles_per_session, 4096u);
    const uid_t backup = uid_of("backup");
    ASSERT_NE(backup, static_cast<uid_t>(-1)) << "Debian's 'backup' user is missing";
    ASSERT_EQ(c.user_limits.size(), 1u);
    const ipcd::UserLimits& ul = c.user_limits.at(backup);
    EXPECT_EQ(ul.sessions, 256u);
    EXPECT_EQ(ul.semaphores, 1024u);
    EXPECT_EQ(ul.waits, 4096u);
    EXPECT_FALSE(c.create.anyone);
    EXPECT_EQ(c.create.users, (std::vector<uid_t>{backup, 1001}));
    EXPECT_EQ(c.create.groups, (std::vector<gid_t>{gid_of("adm")}));
    ASSERT_EQ(c.semaphores.size(), 1u);
    EXPECT_EQ(c.semaphores[0].name, "backups");
    EXPECT_EQ(c.semaphores[0].permits, 3u);
    EXPECT_EQ(c.semaphores[0].owner, backup);
    EXPECT_EQ(c.semaphores[0].group, gid_of("backup"));
    EXPECT_EQ(c.semaphores[0].mode, 0660u);
}

// The example of the format, as documented in config.hpp, with accounts
// that exist everywhere.
TEST(ConfigValues, FullExample) {
    const Config c = parse(R"(
socket = "/run/ipcd/other.sock"
state_dir = "/var/lib/ipcd-test"
spin_us = 0
[limits]
sessions_per_user = 1
semaphores_per_user = 2
waits_per_user = 3
handles_per_session = 1048576
[limits.user.1000]
sessions = 8
[limits.user."1001"]
waits = 9
semaphores = 10
[create]
anyone = false
users = ["root", 1001]
groups = ["root", 1002]
[[semaphore]]
name = "db-writers"
permits = 3
owner = "root"
group = "root"
mode = "0660"
[[semaphore]]
name = "b"
permits = 2147483647
owner = 1000
group = "1000"
mode = 0o640
[[semaphore]]
name = "c_.-9"
permits = 1
)");
    EXPECT_EQ(c.socket_path, "/run/ipcd/other.sock");
    EXPECT_EQ(c.state_dir, "/var/lib/ipcd-test");
    EXPECT_EQ(c.spin_us, 0u);
    EXPECT_EQ(c.limits.sessions_per_user, 1u);
    EXPECT_EQ(c.limits.semaphores_per_user, 2u);
    EXPECT_EQ(c.limits.waits_per_user, 3u);
    EXPECT_EQ(c.limits.handles_per_session, 1048576u);
    ASSERT_EQ(c.user_limits.size(), 2u);
    EXPECT_EQ(c.user_limits.at(1000).sessions, 8u);
    EXPECT_FALSE(c.user_limits.at(1000).semaphores.has_value());
    EXPECT_FALSE(c.user_limits.at(1000).waits.has_value());
    EXPECT_FALSE(c.user_limits.at(1001).sessions.has_value());
    EXPECT_EQ(c.user_limits.at(1001).semaphores, 10u);
    EXPECT_EQ(c.user_limits.at(1001).waits, 9u);
    EXPECT_FALSE(c.create.anyone);
    EXPECT_EQ(c.create.users, (std::vector<uid_t>{0, 1001}));
    EXPECT_EQ(c.create.groups, (std::vector<gid_t>{0, 1002}));
    ASSERT_EQ(c.semaphores.size(), 3u);
    EXPECT_EQ(c.semaphores[0].name, "db-writers");  // file order
    EXPECT_EQ(c.semaphores[0].permits, 3u);
    EXPECT_EQ(c.semaphores[0].owner, 0u);
    EXPECT_EQ(c.semaphores[0].group, 0u);
    EXPECT_EQ(c.semaphores[0].mode, 0660u);
    EXPECT_EQ(c.semaphores[1].name, "b");
    EXPECT_EQ(c.semaphores[1].permits, 2147483647u);
    EXPECT_EQ(c.semaphores[1].owner, 1000u);
    EXPECT_EQ(c.semaphores[1].group, 1000u);
    EXPECT_EQ(c.semaphores[1].mode, 0640u);
    EXPECT_EQ(c.semaphores[2].name, "c_.-9");
    EXPECT_EQ(c.semaphores[2].owner, 0u);  // defaults
    EXPECT_EQ(c.semaphores[2].group, 0u);
    EXPECT_EQ(c.semaphores[2].mode, 0600u);
}

TEST(ConfigValues, InlineFormsAreTheSameAsTables) {
    const Config c = parse(
        "limits = { waits_per_user = 5, user = { \"1000\" = { sessions = 2 } } }\n"
        "semaphore = [ { name = \"x\", permits = 2 }, { name = \"y\", permits = 4, mode = \"644\" } ]\n");
    EXPECT_EQ(c.limits.waits_per_user, 5u);
    EXPECT_EQ(c.user_limits.at(1000).sessions, 2u);
    ASSERT_EQ(c.semaphores.size(), 2u);
    EXPECT_EQ(c.semaphores[1].name, "y");
    EXPECT_EQ(c.semaphores[1].mode, 0644u);
}

TEST(ConfigValues, RangeBoundsAreAccepted) {
    EXPECT_EQ(parse("spin_us = 10000").spin_us, 10000u);
    EXPECT_EQ(parse("spin_us = 0").spin_us, 0u);
    for (const char* key : {"sessions_per_user", "semaphores_per_user", "waits_per_user", "handles_per_session"}) {
        SCOPED_TRACE(key);
        EXPECT_NO_THROW(parse(std::string("[limits]\n") + key + " = 1"));
        EXPECT_NO_THROW(parse(std::string("[limits]\n") + key + " = 1048576"));
    }
    EXPECT_EQ(parse("[limits.user.1000]\nsessions = 1048576").user_limits.at(1000).sessions, 1048576u);
    EXPECT_EQ(parse("[[semaphore]]\nname = 'a'\npermits = 0x7fffffff").semaphores.at(0).permits, 0x7fffffffu);
    EXPECT_EQ(parse("[[semaphore]]\nname = 'a'\npermits = 1\nowner = 4294967294").semaphores.at(0).owner,
              4294967294u);
    const std::string longest = "/" + std::string(106, 's');  // 107 bytes: sun_path minus its NUL
    EXPECT_EQ(parse("socket = '" + longest + "'").socket_path, longest);
    EXPECT_EQ(parse("[[semaphore]]\nname = '" + std::string(32, 'n') + "'\npermits = 1").semaphores.at(0).name,
              std::string(32, 'n'));
}

TEST(ConfigValues, ModeForms) {
    const auto mode = [](const std::string& v) {
        return parse("[[semaphore]]\nname = 'a'\npermits = 1\nmode = " + v).semaphores.at(0).mode;
    };
    EXPECT_EQ(mode("\"0660\""), 0660u);
    EXPECT_EQ(mode("\"660\""), 0660u);
    EXPECT_EQ(mode("\"0\""), 0u);
    EXPECT_EQ(mode("\"0777\""), 0777u);
    EXPECT_EQ(mode("0o600"), 0600u);
    EXPECT_EQ(mode("0o777"), 0777u);
    EXPECT_EQ(mode("0"), 0u);
    EXPECT_EQ(mode("4"), 4u);  // decimal and octal agree below 8
}

TEST(ConfigValues, CreateListsDropRepeatedIds) {
    const Config c = parse("[create]\nanyone = false\nusers = ['root', 0, '0', 7]\ngroups = []\n");
    EXPECT_EQ(c.create.users, (std::vector<uid_t>{0, 7}));
    EXPECT_TRUE(c.create.groups.empty());
}

TEST(ConfigValues, AnyoneFalseAloneLetsOnlyRootCreate) {
    const Config c = parse("[create]\nanyone = false\n");
    EXPECT_FALSE(c.create.anyone);
    EXPECT_TRUE(c.create.users.empty());
    EXPECT_TRUE(c.create.groups.empty());
}

// --- Names and numeric ids ---------------------------------------------------

TEST(ConfigNames, RootByNameAndNumber) {
    for (const char* who : {"\"root\"", "0", "\"0\"", "\"000\""}) {
        SCOPED_TRACE(who);
        const Config c = parse(std::string("[[semaphore]]\nname = 'a'\npermits = 1\nowner = ") + who +
                               "\ngroup = " + who + "\n");
        EXPECT_EQ(c.semaphores.at(0).owner, 0u);
        EXPECT_EQ(c.semaphores.at(0).group, 0u);
    }
}

TEST(ConfigNames, DigitsAreIdsEvenWithoutSuchAnAccount) {
    const Config c = parse("[[semaphore]]\nname = 'a'\npermits = 1\nowner = '4242424'\ngroup = 4242425\n");
    EXPECT_EQ(c.semaphores.at(0).owner, 4242424u);
    EXPECT_EQ(c.semaphores.at(0).group, 4242425u);
}

TEST(ConfigNames, UnknownUserIsAnErrorAtItsLine) {
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\nowner = '" + no_such_name + "'\n", 4,
                 {"'owner'", "no user named '" + no_such_name + "'", "numeric uid"});
    expect_error("[limits.user." + no_such_name + "]\nsessions = 1\n", 1, {"no user named '" + no_such_name + "'"});
    expect_error("[create]\nanyone = false\nusers = [0,\n  '" + no_such_name + "']\n", 4, {"'users'", "no user"});
}

TEST(ConfigNames, UnknownGroupIsAnErrorAtItsLine) {
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\ngroup = '" + no_such_name + "'\n", 4,
                 {"'group'", "no group named '" + no_such_name + "'", "numeric gid"});
    expect_error("[create]\nanyone = false\ngroups = ['" + no_such_name + "']\n", 3, {"'groups'", "no group"});
}

TEST(ConfigNames, IdsOutOfRange) {
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\nowner = -1\n", 4, {"'owner'", "out of range"});
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\nowner = 4294967295\n", 4, {"'owner'", "out of range"});
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\ngroup = '99999999999999999999999'\n", 4,
                 {"'group'", "out of range"});
    expect_error("[limits.user.4294967295]\nsessions = 1\n", 1, {"out of range"});
    expect_error("[create]\nanyone = false\nusers = [-5]\n", 3, {"'users'", "out of range"});
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\nowner = ''\n", 4, {"'owner'", "empty user name"});
}

TEST(ConfigNames, IdsOfTheWrongType) {
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\nowner = 1.0\n", 4,
                 {"'owner'", "must be a user name or a numeric uid", "floating-point"});
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\ngroup = true\n", 4,
                 {"'group'", "must be a group name or a numeric gid", "boolean"});
    expect_error("[create]\nanyone = false\nusers = [[1]]\n", 3, {"'users'", "an array"});
}

// --- Errors: syntax, unknown keys, types ---------------------------------------

TEST(ConfigErrors, TomlSyntaxErrorHasItsPosition) {
    expect_error("spin_us = 5\nsocket = \n", 2, {"not valid TOML"});
    expect_error("[limits\n", 1, {"not valid TOML"});
    expect_error("spin_us = 1\nspin_us = 2\n", 2, {"not valid TOML"});  // redefined
    expect_error("a = \"\\q\"\n", 1, {"not valid TOML"});
}

TEST(ConfigErrors, UnknownTopLevelKey) {
    expect_error("\n\nsockt = '/x'\n", 3, {"unknown key 'sockt' at the top level", "expected one of", "socket",
                                           "did you mean socket?"});
    expect_error("[limit]\n", 1, {"unknown table 'limit'", "did you mean [limits]?"});
    expect_error("[frobnicate]\n", 1, {"unknown table 'frobnicate'", "[[semaphore]]"});
}

TEST(ConfigErrors, UnknownKeyInLimits) {
    expect_error("[limits]\nsessions_per_user = 2\nsesions = 3\n", 3,
                 {"unknown key 'sesions' in [limits]",
                  "expected one of: sessions_per_user, semaphores_per_user, waits_per_user, handles_per_session"});
    expect_error("[limits]\nsesions_per_user = 3\n", 2, {"did you mean sessions_per_user?"});
    expect_error("[limits.user.1000]\nhandles = 3\n", 2,
                 {"unknown key 'handles' in [limits.user.1000]", "sessions, semaphores, waits"});
}

TEST(ConfigErrors, UnknownKeyInCreateAndSemaphore) {
    expect_error("[create]\nanyon = false\n", 2, {"unknown key 'anyon' in [create]", "did you mean anyone?"});
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\n[[semaphore]]\nname = 'b'\npermit = 1\n", 6,
                 {"unknown key 'permit' in [[semaphore]] #2", "did you mean permits?"});
}

TEST(ConfigErrors, FirstErrorInFileOrderIsReported) {
    // Keys are kept sorted by toml++; the parser walks them in file order.
    expect_error("zzz = 1\naaa = 2\n", 1, {"'zzz'"});
}

TEST(ConfigErrors, WrongTypes) {
    expect_error("socket = 5\n", 1, {"'socket' must be a string", "not an integer"});
    expect_error("state_dir = ['/x']\n", 1, {"'state_dir' must be a string", "not an array"});
    expect_error("spin_us = 50.0\n", 1, {"'spin_us' must be an integer (0 .. 10000)", "floating-point"});
    expect_error("spin_us = '50'\n", 1, {"'spin_us' must be an integer", "not a string"});
    expect_error("limits = 5\n", 1, {"'limits' must be a table"});
    expect_error("create = []\n", 1, {"'create' must be a table", "not an array"});
    expect_error("[limits]\nwaits_per_user = true\n", 2, {"'waits_per_user' in [limits] must be an integer"});
    expect_error("[limits]\nuser = 3\n", 2, {"'user' in [limits] must be a table"});
    expect_error("[limits.user]\nalice = 3\n", 2, {"'alice' in [limits.user] must be a table"});
    expect_error("[limits.user.1000]\nwaits = '3'\n", 2, {"'waits' in [limits.user.1000] must be an integer"});
    expect_error("[create]\nanyone = 'no'\n", 2, {"'anyone' in [create] must be true or false"});
    expect_error("[create]\nanyone = false\nusers = 'root'\n", 3, {"'users' in [create] must be an array"});
    expect_error("[create]\nanyone = false\ngroups = 0\n", 3, {"'groups' in [create] must be an array"});
    expect_error("[[semaphore]]\nname = 1\npermits = 1\n", 2, {"'name' in [[semaphore]] #1 must be a string"});
    expect_error("[[semaphore]]\nname = 'a'\npermits = '1'\n", 3, {"'permits' in [[semaphore]] #1 must be an integer"});
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\nmode = 1.5\n", 4, {"'mode'", "octal string"});
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\nmode = 1979-05-27\n", 4, {"'mode'", "not a date"});
}

// --- Errors: ranges and values --------------------------------------------------

TEST(ConfigErrors, SocketPath) {
    expect_error("socket = 'ipcd.sock'\n", 1, {"'socket'", "absolute path"});
    expect_error("socket = ''\n", 1, {"'socket'", "absolute path"});
    expect_error("socket = '/" + std::string(107, 's') + "'\n", 1, {"'socket'", "108 bytes", "at most 107"});
    expect_error("socket = \"/a\\u0000b\"\n", 1, {"'socket'", "NUL"});
}

TEST(ConfigErrors, StateDir) {
    expect_error("\nstate_dir = 'var/lib/ipcd'\n", 2, {"'state_dir'", "absolute path"});
    expect_error("state_dir = '/" + std::string(4000, 'd') + "'\n", 1, {"'state_dir'", "at most 4000"});
}

TEST(ConfigErrors, SpinOutOfRange) {
    expect_error("spin_us = 10001\n", 1, {"'spin_us' = 10001 is out of range (0 .. 10000)"});
    expect_error("spin_us = -1\n", 1, {"'spin_us' = -1 is out of range"});
    expect_error("spin_us = 9223372036854775807\n", 1, {"out of range"});
}

TEST(ConfigErrors, LimitsOutOfRange) {
    for (const char* key : {"sessions_per_user", "semaphores_per_user", "waits_per_user", "handles_per_session"}) {
        SCOPED_TRACE(key);
        expect_error(std::string("[limits]\n") + key + " = 0\n", 2,
                     {std::string("'") + key + "' in [limits] = 0 is out of range (1 .. 1048576)"});
        expect_error(std::string("[limits]\n") + key + " = 1048577\n", 2, {"out of range (1 .. 1048576)"});
        expect_error(std::string("[limits]\n") + key + " = -9223372036854775808\n", 2, {"out of range"});
    }
    for (const char* key : {"sessions", "semaphores", "waits"}) {
        SCOPED_TRACE(key);
        expect_error(std::string("[limits.user.1000]\n") + key + " = 0\n", 2,
                     {std::string("'") + key + "' in [limits.user.1000] = 0 is out of range"});
        expect_error(std::string("[limits.user.1000]\n") + key + " = 1048577\n", 2, {"out of range"});
    }
}

TEST(ConfigErrors, UserLimitsForRootOrTwiceForOneUid) {
    expect_error("[limits.user.root]\nsessions = 1\n", 1,
                 {"[limits.user.root]: root (uid 0) is exempt", "remove this table"});
    expect_error("[limits.user.'a b']\nsessions = 1\n", 1, {"[limits.user.'a b']: no user named 'a b'"});
    expect_error("[limits.user.0]\nsessions = 1\n", 1, {"exempt"});
    expect_error("[limits.user.1000]\nsessions = 1\n[limits.user.01000]\nwaits = 1\n", 3,
                 {"uid 1000 already has limits (line 1)", "merge"});
}

TEST(ConfigErrors, CreateListsNeedAnyoneFalse) {
    expect_error("[create]\nusers = ['root']\n", 2,
                 {"'users' in [create] has no effect while anyone = true", "set anyone = false"});
    expect_error("[create]\nanyone = true\ngroups = [0]\n", 3, {"'groups' in [create] has no effect"});
    // The order of the keys does not matter.
    expect_error("[create]\ngroups = [0]\nanyone = true\n", 2, {"'groups'"});
    EXPECT_NO_THROW(parse("[create]\ngroups = [0]\nanyone = false\n"));
}

TEST(ConfigErrors, SemaphoreSection) {
    expect_error("[semaphore]\nname = 'a'\n", 1, {"[semaphore] must be written [[semaphore]]"});
    expect_error("semaphore = 5\n", 1, {"'semaphore' must be an array of tables"});
    expect_error("semaphore = [1]\n", 1, {"[[semaphore]] #1 must be a table", "not an integer"});
    expect_error("[[semaphore]]\nname = 'a'\npermits = 1\n\n[[semaphore]]\npermits = 1\n", 5,
                 {"[[semaphore]] #2 has no 'name'"});
    expect_error("[[semaphore]]\nname = 'db'\n", 1, {"[[semaphore]] #1 ('db') has no 'permits'", "required"});
}

TEST(ConfigErrors, SemaphoreNames) {
    for (const char* bad : {"", ".hidden", "with space", "slash/es", "é"}) {
        SCOPED_TRACE(bad);
        expect_error(std::string("[[semaphore]]\npermits = 1\nname = \"") + bad + "\"\n", 3,
                     {"'name' in [[semaphore]] #1", "not a valid semaphore name", "1 to 32 characters"});
    }
    expect_error("[[semaphore]]\npermits = 1\nname = '" + std::string(33, 'n') + "'\n", 3,
                 {"not a valid semaphore name"});
}

TEST(ConfigErrors, DuplicateSemaphoreNames) {
    expect_error(
        "[[semaphore]]\nname = 'db'\npermits = 1\n\n[[semaphore]]\nname = 'x'\npermits = 1\n\n"
        "[[semaphore]]\nname = 'db'\npermits = 2\n",
        10, {"duplicate semaphore 'db' (first declared at line 2)", "unique"});
}

TEST(ConfigErrors, PermitsOutOfRange) {
    expect_error("[[semaphore]]\nname = 'a'\npermits = 0\n", 3,
                 {"'permits' in [[semaphore]] #1 = 0 is out of range (1 .. 2147483647)"});
    expect_error("[[semaphore]]\nname = 'a'\npermits = 2147483648\n", 3, {"out of range"});
    expect_error("[[semaphore]]\nname = 'a'\npermits = -3\n", 3, {"out of range"});
}

TEST(ConfigErrors, Modes) {
    const auto with_mode = [](const std::string& m) { return "[[semaphore]]\nname = 'a'\npermits = 1\nmode = " + m; };
    expect_error(with_mode("660"), 4, {"'mode'", "out of range", "in octal", "\"0660\"", "0o660"});
    expect_error(with_mode("420"), 4, {"decimal integer"});  // would be 0o644 by accident
    expect_error(with_mode("0o1000"), 4, {"'mode'", "out of range"});
    expect_error(with_mode("-1"), 4, {"out of range"});
    expect_error(with_mode("'0668'"), 4, {"'mode'", "not an octal mode"});
    expect_error(with_mode("'1000'"), 4, {"not an octal mode"});
    expect_error(with_mode("'00000'"), 4, {"not an octal mode"});
    expect_error(with_mode("'rw-rw----'"), 4, {"not an octal mode"});
    expect_error(with_mode("''"), 4, {"not an octal mode"});
}

TEST(ConfigErrors, ErrorsQuoteHostileTextSafely) {
    const std::string msg = error_of("\"a\\nb\\u001b[31m\" = 1\n");
    EXPECT_NE(msg.find("'a\\x0ab\\x1b[31m'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\x1b'), std::string::npos);
}

TEST(ConfigErrors, SourceNamesTheFile) {
    try {
        parse_config("spin_us = 'x'\n", "/etc/ipcd/ipcd.conf");
        FAIL() << "parsed";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("/etc/ipcd/ipcd.conf:1:11: ", 0), 0u) << e.what();
    }
}

// Not a fuzzer, but the shapes a fuzzer finds first: nothing but ConfigError
// may come out, whatever the bytes.
TEST(ConfigErrors, OnlyConfigErrorOnJunk) {
    const std::string junk[] = {std::string("\0\0\0", 3), "\xff\xfe", "[[[[", "a = [" + std::string(10000, '['),
                                "a = " + std::string(5000, '{'), "[" + std::string(300, 'a') + "]\n",
                                "semaphore = [[]]", "[limits.user.'']\n", "x=1\r\n\x01"};
    for (const std::string& t : junk) {
        try {
            parse(t);
            ADD_FAILURE() << "parsed: " << t.substr(0, 40);
        } catch (const ConfigError&) {
        } catch (...) {
            ADD_FAILURE() << "not a ConfigError: " << t.substr(0, 40);
        }
    }
}

// --- Files ----------------------------------------------------------------------

TEST(ConfigFiles, MissingFile) {
    try {
        ipcd::load_config("/nonexistent/ipcd.conf");
        FAIL() << "loaded";
    } catch (const ConfigError& e) {
        EXPECT_STREQ(e.what(), "/nonexistent/ipcd.conf: cannot read: No such file or directory");
    }
}

TEST(ConfigFiles, DirectoryIsUnreadable) {
    try {
        ipcd::load_config("/");
        FAIL() << "loaded";
    } catch (const ConfigError& e) {
        EXPECT_STREQ(e.what(), "/: cannot read: Is a directory");
    }
}

TEST(ConfigFiles, ErrorsNameThePath) {
    char path[] = "/tmp/ipcd-config-test-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    const std::string text = "[limits]\n\nwaits_per_user = 0\n";
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
    try {
        ipcd::load_config(path);
        ADD_FAILURE() << "loaded";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()).rfind(std::string(path) + ":3:18: 'waits_per_user'", 0), 0u) << e.what();
    }
    ::unlink(path);
}

TEST(ConfigFiles, TooLargeIsRefused) {
    char path[] = "/tmp/ipcd-config-test-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    const std::string comment = "#" + std::string(1022, 'x') + "\n";
    for (int i = 0; i < 1025; ++i) ASSERT_EQ(::write(fd, comment.data(), comment.size()), 1024);
    ::close(fd);
    try {
        ipcd::load_config(path);
        ADD_FAILURE() << "loaded";
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
    }
    ::unlink(path);
}

}  // namespace

// toml++ quotes the offending input in its own messages, raw: a line break
// in it must not reach the log as one (found by fuzz/config_fuzz; the input
// is fuzz/regressions/config/parse-error-echoes-line-break).
TEST(ConfigErrors, ParseErrorsQuotingTheFileStayOnOneLine) {
    for (const std::string text : {"anyone = tru\n", "x = \"a\nb\"\n", "k = 1\x1b[2J\n", "[t\r\n"}) {
        const std::string msg = error_of(text);
        SCOPED_TRACE(msg);
        EXPECT_EQ(msg.rfind("test.conf:", 0), 0u);
        for (const char c : msg) EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) << int(c);
    }
}
