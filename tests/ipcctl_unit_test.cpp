// tests/ipcctl_unit_test.cpp - ipcctl's pure parts: strict number parsing,
// exit codes and messages, and rendering (tables, JSON), with no daemon.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "parse.hpp"
#include "render.hpp"

using namespace std::chrono;
using ipc::proto::Result;
using namespace ipcctl;

// --- parse -------------------------------------------------------------------

TEST(IpcctlParse, CountAcceptsPlainDecimalsInRange) {
    EXPECT_EQ(parse_count("1", "--permits"), 1u);
    EXPECT_EQ(parse_count("3", "--permits"), 3u);
    EXPECT_EQ(parse_count("007", "--permits"), 7u);
    EXPECT_EQ(parse_count("4294967295", "--permits"), 4294967295u);
}

TEST(IpcctlParse, CountRejectsGarbageSignsZeroAndOverflow) {
    for (const char* bad : {"", "0", "3x", "x3", "-1", "+1", " 1", "1 ", "1.0", "0x10", "4294967296",
                            "99999999999999999999999", "1e3"}) {
        EXPECT_THROW(parse_count(bad, "--permits"), UsageError) << "'" << bad << "'";
    }
}

TEST(IpcctlParse, CountMessageNamesTheOptionAndTheRange) {
    try {
        parse_count("3x", "--count");
        FAIL() << "no throw";
    } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(), "invalid --count value '3x': expected a whole number from 1 to 4294967295");
    }
}

TEST(IpcctlParse, ModeIsOctalUpTo0777) {
    EXPECT_EQ(parse_mode("0600"), 0600u);
    EXPECT_EQ(parse_mode("600"), 0600u);
    EXPECT_EQ(parse_mode("0"), 0u);
    EXPECT_EQ(parse_mode("777"), 0777u);
    EXPECT_EQ(parse_mode("0000777"), 0777u);
    for (const char* bad : {"", "8", "0800", "0x1ff", "1000", "1777", "-600", "rw", "0600 ", "99999999999999"})
        EXPECT_THROW(parse_mode(bad), UsageError) << "'" << bad << "'";
}

TEST(IpcctlParse, TimeoutIsDecimalSeconds) {
    EXPECT_EQ(parse_timeout("0"), nanoseconds(0));
    EXPECT_EQ(parse_timeout("10"), seconds(10));
    EXPECT_EQ(parse_timeout("0.25"), milliseconds(250));
    EXPECT_EQ(parse_timeout(".5"), milliseconds(500));
    EXPECT_EQ(parse_timeout("1.000000001"), nanoseconds(1'000'000'001));
    EXPECT_EQ(parse_timeout("9223372036"), seconds(9223372036));
    for (const char* bad : {"", ".", "1.", "-1", "+1", "1s", "1.5x", "1,5", "1.0000000001", "9223372037",
                            "9223372036.9", "99999999999999999999", "inf", "1e3"})
        EXPECT_THROW(parse_timeout(bad), UsageError) << "'" << bad << "'";
}

TEST(IpcctlParse, NameFollowsTheProtocolRules) {
    EXPECT_EQ(parse_name("db-writers_1.x"), "db-writers_1.x");
    EXPECT_EQ(parse_name(std::string(32, 'a')), std::string(32, 'a'));
    for (const std::string& bad : {std::string(""), std::string(".hidden"), std::string("a/b"), std::string("a b"),
                                  std::string(33, 'a'), std::string("ä")})
        EXPECT_THROW(parse_name(bad), UsageError) << "'" << bad << "'";
}

TEST(IpcctlParse, UintHonoursItsBounds) {
    EXPECT_EQ(parse_uint("0", "-E", 0, 255), 0u);
    EXPECT_EQ(parse_uint("255", "-E", 0, 255), 255u);
    EXPECT_THROW(parse_uint("256", "-E", 0, 255), UsageError);
    EXPECT_THROW(parse_uint("18446744073709551616", "-E", 0, UINT64_MAX), UsageError);
    EXPECT_EQ(parse_uint("18446744073709551615", "-E", 0, UINT64_MAX), UINT64_MAX);
}

// --- errors ------------------------------------------------------------------

TEST(IpcctlErrors, DaemonAnswersMapToTheDocumentedCodes) {
    EXPECT_EQ(exit_code_for({}), exit_ok);
    EXPECT_EQ(exit_code_for(Result::not_found), 3);
    EXPECT_EQ(exit_code_for(Result::deleted), 3);
    EXPECT_EQ(exit_code_for(Result::permission_denied), 4);
    EXPECT_EQ(exit_code_for(Result::timed_out), 5);
    EXPECT_EQ(exit_code_for(Result::would_block), 5);
    EXPECT_EQ(exit_code_for(Result::stopping), 6);
    EXPECT_EQ(exit_code_for(Result::exists), 7);
    EXPECT_EQ(exit_code_for(Result::limit), 1);
    EXPECT_EQ(exit_code_for(Result::too_many), 1);
    EXPECT_EQ(exit_code_for(Result::invalid_argument), 1);
}

TEST(IpcctlErrors, TransportErrorsMapToNoDaemonOrPermission) {
    EXPECT_EQ(exit_code_for(std::make_error_code(std::errc::connection_refused)), 6);
    EXPECT_EQ(exit_code_for(std::make_error_code(std::errc::no_such_file_or_directory)), 6);
    EXPECT_EQ(exit_code_for(std::make_error_code(std::errc::connection_reset)), 6);
    EXPECT_EQ(exit_code_for(std::error_code(EPIPE, std::system_category())), 6);
    EXPECT_EQ(exit_code_for(std::make_error_code(std::errc::permission_denied)), 4);
    EXPECT_EQ(exit_code_for(std::make_error_code(std::errc::protocol_error)), 1);
}

TEST(IpcctlErrors, MessagesSayWhatToDo) {
    const ErrorContext ctx{"/run/x.sock", "demo", "stat"};
    EXPECT_EQ(message_for(std::make_error_code(std::errc::connection_refused), ctx),
              "no daemon at /run/x.sock: is ipcd running? (or pass --socket, set $IPCD_SOCKET)");
    EXPECT_EQ(message_for(Result::not_found, ctx), "no semaphore demo: see 'ipcctl list' for the semaphores there are");
    EXPECT_NE(message_for(Result::permission_denied, ctx).find("permission denied for semaphore demo"),
              std::string::npos);
    EXPECT_NE(message_for(Result::permission_denied, {"/s", "demo", "delete"}).find("only its owner or root"),
              std::string::npos);
    EXPECT_NE(message_for(Result::exists, {"/s", "demo", "create"}).find("semaphore demo exists already"),
              std::string::npos);
    EXPECT_NE(message_for(std::make_error_code(std::errc::connection_reset), ctx).find("lost the connection"),
              std::string::npos);
    for (auto r : {Result::not_found, Result::exists, Result::permission_denied, Result::invalid_argument,
                   Result::would_block, Result::timed_out, Result::over_release, Result::deleted, Result::stopping,
                   Result::limit, Result::bad_handle, Result::end, Result::unknown_op, Result::busy,
                   Result::too_many}) {
        const auto m = message_for(r, ctx);
        EXPECT_FALSE(m.empty());
        EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
    }
}

// --- render ------------------------------------------------------------------

namespace {

Context fixed_context() {
    Context c;
    c.now = system_clock::time_point(seconds(1'700'000'100));
    c.user_name = [](uid_t u) -> std::optional<std::string> {
        if (u == 0) return "root";
        return std::nullopt;
    };
    c.group_name = [](gid_t g) -> std::optional<std::string> {
        if (g == 0) return "root";
        return std::nullopt;
    };
    return c;
}

ipc::SemaphoreInfo sample() {
    ipc::SemaphoreInfo s;
    s.name = "demo";
    s.permits = 3;
    s.available = 1;
    s.holder_count = 1;
    s.waiter_count = 1;
    s.owner = 0;
    s.group = 1234;
    s.mode = 0640;
    s.persistent = true;
    s.last_token = 17;
    s.holders.push_back({4242, 0, 2, system_clock::time_point(milliseconds(1'700'000'000'250)), 7});
    s.waiters.push_back({4343, 1000, 3, system_clock::time_point(seconds(1'700'000'090)), 8});
    return s;
}

}  // namespace

TEST(IpcctlRender, Iso8601IsUtcWithMilliseconds) {
    EXPECT_EQ(iso8601(system_clock::time_point(milliseconds(1'700'000'000'250))), "2023-11-14T22:13:20.250Z");
    EXPECT_EQ(iso8601(system_clock::time_point{}), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(iso8601(system_clock::time_point(milliseconds(-1))), "1969-12-31T23:59:59.999Z");
}

TEST(IpcctlRender, DurationsReadLikeSystemctl) {
    EXPECT_EQ(format_duration(seconds(0)), "0s");
    EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
    EXPECT_EQ(format_duration(seconds(65)), "1min 5s");
    EXPECT_EQ(format_duration(seconds(3 * 86400 + 2 * 3600 + 5)), "3d 2h 5s");
    EXPECT_EQ(format_duration(seconds(-5)), "0s");
}

TEST(IpcctlRender, ModesInOctalAndSymbols) {
    EXPECT_EQ(octal_mode(0640), "0640");
    EXPECT_EQ(octal_mode(0), "0000");
    EXPECT_EQ(symbolic_mode(0640), "rw-r-----");
    EXPECT_EQ(symbolic_mode(0777), "rwxrwxrwx");
}

TEST(IpcctlRender, TableAlignsColumnsAndTrimsTrailingBlanks) {
    Table t({{"NAME"}, {"N", true}, {"LAST"}});
    t.add_row({"a", "1", ""});
    t.add_row({"longer", "100", "x"});
    EXPECT_EQ(t.render(), "NAME      N  LAST\na         1\nlonger  100  x\n");
    EXPECT_EQ(t.render(false), "a         1\nlonger  100  x\n");
    EXPECT_EQ(t.render(true, "  "), "  NAME      N  LAST\n  a         1\n  longer  100  x\n");
}

TEST(IpcctlRender, SemaphoreJsonHasEveryDocumentedField) {
    const auto ctx = fixed_context();
    const auto j = semaphore_json(sample(), true, ctx);
    EXPECT_EQ(j["name"], "demo");
    EXPECT_EQ(j["permits"], 3);
    EXPECT_EQ(j["available"], 1);
    EXPECT_EQ(j["holder_count"], 1);
    EXPECT_EQ(j["waiter_count"], 1);
    EXPECT_EQ(j["owner"], 0);
    EXPECT_EQ(j["owner_name"], "root");
    EXPECT_EQ(j["group"], 1234);
    EXPECT_TRUE(j["group_name"].is_null());
    EXPECT_EQ(j["mode"], "0640");
    EXPECT_EQ(j["persistent"], true);
    EXPECT_EQ(j["last_token"], 17);
    ASSERT_EQ(j["holders"].size(), 1u);
    EXPECT_EQ(j["holders"][0]["pid"], 4242);
    EXPECT_EQ(j["holders"][0]["uid"], 0);
    EXPECT_EQ(j["holders"][0]["user"], "root");
    EXPECT_EQ(j["holders"][0]["count"], 2);
    EXPECT_EQ(j["holders"][0]["since"], "2023-11-14T22:13:20.250Z");
    EXPECT_EQ(j["holders"][0]["session"], 7);
    ASSERT_EQ(j["waiters"].size(), 1u);
    EXPECT_EQ(j["waiters"][0]["count"], 3);
    EXPECT_TRUE(j["waiters"][0]["user"].is_null());

    const auto summary = semaphore_json(sample(), false, ctx);
    EXPECT_FALSE(summary.contains("holders"));
    EXPECT_FALSE(summary.contains("waiters"));
}

TEST(IpcctlRender, ListJsonIsAnArrayOfSummaries) {
    const auto j = list_json({{sample(), true}, {sample(), false}}, fixed_context());
    ASSERT_TRUE(j.is_array());
    ASSERT_EQ(j.size(), 2u);
    EXPECT_FALSE(j[0].contains("holders"));
    EXPECT_EQ(j[0]["mode"], "0640");
    EXPECT_EQ(j[0]["holder_count"], 1);
    // Not readable by the caller: only what the daemon's list tells.
    EXPECT_EQ(j[1]["name"], "demo");
    EXPECT_EQ(j[1]["permits"], 3);
    EXPECT_EQ(j[1]["available"], 1);
    for (const char* key : {"holder_count", "waiter_count", "owner", "owner_name", "group", "group_name", "mode",
                            "persistent", "last_token"}) {
        ASSERT_TRUE(j[1].contains(key)) << key;
        EXPECT_TRUE(j[1][key].is_null()) << key;
    }
    EXPECT_TRUE(list_json({}, fixed_context()).is_array());
}

TEST(IpcctlRender, ListTextHonoursColumnsAndHeadings) {
    const auto ctx = fixed_context();
    EXPECT_EQ(list_text({{sample(), true}}, parse_columns("name,permits,available,mode"), true, ctx),
              "NAME  PERMITS  AVAILABLE  MODE\n"
              "demo        3          1  0640\n");
    EXPECT_EQ(list_text({{sample(), true}}, parse_columns("NAME,OWNER,GROUP"), false, ctx), "demo  root  1234\n");
    EXPECT_EQ(list_text({{sample(), false}}, parse_columns("NAME,AVAILABLE,OWNER,MODE"), false, ctx),
              "demo  1  -  -\n");
    const auto empty = list_text({}, list_columns(), true, ctx);
    EXPECT_EQ(empty, "NAME  PERMITS  AVAILABLE  HOLDERS  WAITERS  OWNER  GROUP  MODE  PERSISTENT  DECLARED  TOKEN\n");
    EXPECT_THROW(parse_columns("NAME,BOGUS"), UsageError);
    EXPECT_THROW(parse_columns(""), UsageError);
    EXPECT_THROW(parse_columns("NAME,"), UsageError);
}

TEST(IpcctlRender, StatTextShowsHoldersAndWaiters) {
    const auto text = stat_text(sample(), fixed_context());
    EXPECT_NE(text.find("Name:       demo\n"), std::string::npos) << text;
    EXPECT_NE(text.find("Permits:    3 (1 available, 2 held)\n"), std::string::npos) << text;
    EXPECT_NE(text.find("Mode:       0640 (rw-r-----)\n"), std::string::npos) << text;
    EXPECT_NE(text.find("Holders: 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("4242  root"), std::string::npos) << text;
    EXPECT_NE(text.find("(1min 39s ago)"), std::string::npos) << text;
    EXPECT_NE(text.find("Waiters: 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("4343  1000"), std::string::npos) << text;
}

TEST(IpcctlRender, StatusJsonAndText) {
    ipc::DaemonStatus st{4, 2, 1, 99, system_clock::time_point(seconds(1'700'000'000))};
    const auto ctx = fixed_context();
    const auto j = status_json(st, "/run/ipcd/ipcd.sock", ctx);
    EXPECT_EQ(j["pid"], 99);
    EXPECT_EQ(j["socket"], "/run/ipcd/ipcd.sock");
    EXPECT_EQ(j["started"], "2023-11-14T22:13:20.000Z");
    EXPECT_EQ(j["uptime"], 100);
    EXPECT_EQ(j["sessions"], 4);
    EXPECT_EQ(j["semaphores"], 2);
    EXPECT_EQ(j["waiting"], 1);
    const auto text = status_text(st, "/run/ipcd/ipcd.sock", ctx);
    EXPECT_NE(text.find("ipcd (pid 99)"), std::string::npos) << text;
    EXPECT_NE(text.find("Uptime:     1min 40s"), std::string::npos) << text;
    EXPECT_NE(text.find("Waiting:    1 request\n"), std::string::npos) << text;
}

// --- issue 4: declared, usage, sessions, reload, channels ------------------------

TEST(IpcctlRender, DeclaredShowsInStatListAndJson) {
    auto s = sample();
    s.declared = true;
    const auto ctx = fixed_context();
    EXPECT_EQ(semaphore_json(s, false, ctx)["declared"], true);
    EXPECT_EQ(semaphore_json(sample(), false, ctx)["declared"], false);
    EXPECT_EQ(list_text({{s, true}}, parse_columns("name,declared"), false, ctx), "demo  yes\n");
    EXPECT_EQ(list_text({{s, false}}, parse_columns("name,declared"), false, ctx), "demo  -\n");
    EXPECT_TRUE(list_json({{s, false}}, ctx)[0]["declared"].is_null());
    const auto text = stat_text(s, ctx);
    EXPECT_NE(text.find("Declared:   yes (in ipcd's configuration file)\n"), std::string::npos) << text;
}

namespace {

ipc::UsageInfo sample_usage() {
    ipc::UsageInfo u;
    u.uid = 1000;
    u.sessions = {1, 64};
    u.semaphores = {0, 256};
    u.waits = {0, 1024};
    u.handles_per_session = 4096;
    u.may_create = true;
    return u;
}

}  // namespace

TEST(IpcctlRender, UsageTextAndJsonShowUseAgainstLimits) {
    const auto ctx = fixed_context();
    EXPECT_EQ(usage_text(sample_usage(), ctx),
              "Usage of 1000 (uid 1000):\n"
              "  Sessions:            1/64\n"
              "  Semaphores:          0/256 owned\n"
              "  Waits:               0/1024 pending\n"
              "  Handles per session: 4096\n"
              "  May create:          yes\n");
    const auto j = usage_json(sample_usage(), ctx);
    EXPECT_EQ(j["uid"], 1000);
    EXPECT_TRUE(j["user"].is_null());
    EXPECT_EQ(j["sessions"]["used"], 1);
    EXPECT_EQ(j["sessions"]["limit"], 64);
    EXPECT_EQ(j["semaphores"]["limit"], 256);
    EXPECT_EQ(j["waits"]["limit"], 1024);
    EXPECT_EQ(j["handles_per_session"], 4096);
    EXPECT_EQ(j["may_create"], true);

    ipc::UsageInfo root;  // limit 0: none
    root.sessions = {3, 0};
    const auto rt = usage_text(root, ctx);
    EXPECT_NE(rt.find("Usage of root (uid 0):\n"), std::string::npos) << rt;
    EXPECT_NE(rt.find("Sessions:            3 (no limit)\n"), std::string::npos) << rt;
    EXPECT_NE(rt.find("Handles per session: no limit\n"), std::string::npos) << rt;
    EXPECT_NE(rt.find("May create:          no\n"), std::string::npos) << rt;
    const auto rj = usage_json(root, ctx);
    EXPECT_TRUE(rj["sessions"]["limit"].is_null());
    EXPECT_TRUE(rj["handles_per_session"].is_null());
}

TEST(IpcctlRender, StatusCarriesUsageWhenGiven) {
    ipc::DaemonStatus st{4, 2, 1, 99, system_clock::time_point(seconds(1'700'000'000))};
    const auto ctx = fixed_context();
    EXPECT_TRUE(status_json(st, "/s", ctx)["usage"].is_null());
    EXPECT_EQ(status_json(st, "/s", ctx, sample_usage())["usage"]["sessions"]["limit"], 64);
    const auto text = status_text(st, "/s", ctx, sample_usage());
    EXPECT_NE(text.find("Waiting:    1 request\n\nUsage of 1000 (uid 1000):\n"), std::string::npos) << text;
    EXPECT_EQ(status_text(st, "/s", ctx).find("Usage"), std::string::npos);
}

TEST(IpcctlRender, SessionsTableEscapesCommandNames) {
    std::vector<ipc::SessionInfo> list = {
        {1, 4242, 0, 0, 3, 0, "postgres"},
        {12, 77, 1000, 1000, 0, 2, "evil\n\x1b[2Jname"},
        {13, 78, 1000, 1000, 0, 0, ""},
    };
    EXPECT_EQ(sessions_text(list, true),
              "ID   PID   UID  COMMAND              HELD  WAITS\n"
              " 1  4242     0  postgres                3      0\n"
              "12    77  1000  evil\\x0a\\x1b[2Jname     0      2\n"
              "13    78  1000  -                       0      0\n");
    EXPECT_EQ(sessions_text(list, false).substr(0, 3), " 1 ");
    const auto j = sessions_json(list, 12, fixed_context());
    ASSERT_EQ(j.size(), 3u);
    EXPECT_EQ(j[0]["id"], 1);
    EXPECT_EQ(j[0]["pid"], 4242);
    EXPECT_EQ(j[0]["user"], "root");
    EXPECT_EQ(j[0]["command"], "postgres");
    EXPECT_EQ(j[0]["permits_held"], 3);
    EXPECT_EQ(j[0]["self"], false);
    EXPECT_EQ(j[1]["waits"], 2);
    EXPECT_EQ(j[1]["self"], true);
    EXPECT_TRUE(j[1]["user"].is_null());
}

TEST(IpcctlRender, ReleaseAndReloadSayWhatHappened) {
    const ipc::SessionInfo who{7, 4242, 1000, 1000, 2, 1, "sleep"};
    EXPECT_EQ(release_text(7, {2, 1}, &who),
              "released session 7 (pid 4242, uid 1000, sleep): 2 permits given back, 1 wait cancelled\n");
    EXPECT_EQ(release_text(7, {1, 0}, nullptr), "released session 7: 1 permit given back, 0 waits cancelled\n");
    EXPECT_EQ(release_json(7, {2, 1}), nlohmann::ordered_json::parse(
                                           R"({"session": 7, "permits_released": 2, "waits_cancelled": 1})"));
    EXPECT_EQ(reload_text(3), "reloaded: 3 declared semaphores\n");
    EXPECT_EQ(reload_text(1), "reloaded: 1 declared semaphore\n");
    EXPECT_EQ(reload_json(0)["declared"], 0);
}

TEST(IpcctlRender, PrintableEscapesControlBytesAndBackslash) {
    EXPECT_EQ(printable("plain-name_1.x"), "plain-name_1.x");
    EXPECT_EQ(printable("a\tb\\c"), "a\\x09b\\x5cc");
    EXPECT_EQ(printable("\xff\x7f"), "\\xff\\x7f");
    EXPECT_EQ(printable("a b"), "a\\x20b");
}

namespace {

ipc::ChannelEntry valid_entry() {
    ipc::ChannelEntry e;
    e.name = "jobs";
    e.path = "/dev/shm/ipc.jobs";
    e.has_stat = true;
    e.owner = 0;
    e.group = 0;
    e.mode = 0600;
    e.size = 8512;
    ipc::ChannelInfo i;
    i.kind = ipc::ChannelKind::mpmc;
    i.version = 1;
    i.capacity = 64;
    i.slot_count = 64;
    i.slot_size = 128;
    i.slots_offset = 320;
    i.total_size = 8512;
    i.head = 10;
    i.tail = 13;
    i.depth = 3;
    i.sleeping_receivers = 1;
    e.info = i;
    return e;
}

ipc::ChannelEntry invalid_entry() {
    ipc::ChannelEntry e;
    e.name = "junk";
    e.path = "/dev/shm/ipc.junk";
    e.has_stat = true;
    e.owner = 1000;
    e.mode = 0644;
    e.size = 12;
    e.problem = "truncated: 12 bytes";
    return e;
}

}  // namespace

TEST(IpcctlRender, ChannelsTableShowsValidAndInvalidFiles) {
    const auto ctx = fixed_context();
    EXPECT_EQ(channels_text({valid_entry(), invalid_entry()}, true, ctx),
              "NAME  KIND     CAPACITY  DEPTH  SENDERS-SLEEPING  RECEIVERS-SLEEPING  CLOSED  OWNER  MODE  PROBLEM\n"
              "jobs  mpmc           64      3                 0                   1  no      root   0600\n"
              "junk  invalid         -      -                 -                   -  -       1000   0644  "
              "truncated: 12 bytes\n");
    const auto j = channels_json({valid_entry(), invalid_entry()}, ctx);
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[0]["kind"], "mpmc");
    EXPECT_TRUE(j[0]["problem"].is_null());
    EXPECT_EQ(j[0]["depth"], 3);
    EXPECT_EQ(j[0]["owner_name"], "root");
    EXPECT_FALSE(j[0].contains("head")) << "the list has no header details";
    EXPECT_EQ(j[1]["kind"], "invalid");
    EXPECT_EQ(j[1]["problem"], "truncated: 12 bytes");
    EXPECT_TRUE(j[1]["capacity"].is_null());
    EXPECT_EQ(j[1]["mode"], "0644");
}

TEST(IpcctlRender, ChannelStatShowsHeaderAndCounters) {
    const auto ctx = fixed_context();
    const auto text = channel_stat_text(valid_entry(), ctx);
    EXPECT_NE(text.find("Kind:        mpmc\n"), std::string::npos) << text;
    EXPECT_NE(text.find("Capacity:    64 messages (64 slots of 128 bytes at offset 320)\n"), std::string::npos)
        << text;
    EXPECT_NE(text.find("Depth:       3 buffered (head 10, tail 13)\n"), std::string::npos) << text;
    EXPECT_NE(text.find("Sleeping:    0 senders, 1 receivers\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("Problem:"), std::string::npos) << text;
    const auto j = channel_json(valid_entry(), true, ctx);
    EXPECT_EQ(j["head"], 10);
    EXPECT_EQ(j["tail"], 13);
    EXPECT_EQ(j["total_size"], 8512);
    const auto bad = channel_stat_text(invalid_entry(), ctx);
    EXPECT_NE(bad.find("Kind:    invalid\nProblem: truncated: 12 bytes\n"), std::string::npos) << bad;
    EXPECT_TRUE(channel_json(invalid_entry(), true, ctx)["head"].is_null());
}

TEST(IpcctlErrors, AdminAnswersSayWhatToDo) {
    const std::string unknown = message_for(Result::unknown_op, {"/s", {}, "sessions"});
    EXPECT_NE(unknown.find("does not know the 'sessions' request"), std::string::npos) << unknown;
    EXPECT_NE(unknown.find("upgrade ipcd"), std::string::npos) << unknown;

    EXPECT_NE(message_for(Result::unknown_op, {"/s", {}, "status --user", {}, "alice"})
                  .find("does not know the 'status --user' request"),
              std::string::npos);

    ErrorContext rel{"/s", {}, "release-session", "7"};
    EXPECT_EQ(message_for(Result::not_found, rel), "no session 7: see 'ipcctl sessions' for the sessions there are");
    EXPECT_EQ(message_for(Result::permission_denied, rel),
              "permission denied: only root may release a session; run it as root (sudo ipcctl release-session 7)");
    EXPECT_EQ(exit_code_for(Result::not_found), exit_not_found);

    const std::string bad = message_for(Result::bad_config, {"/s", {}, "reload"});
    EXPECT_NE(bad.find("journalctl -u ipcd"), std::string::npos) << bad;
    EXPECT_NE(bad.find("kept its running configuration"), std::string::npos) << bad;
    EXPECT_EQ(exit_code_for(Result::bad_config), exit_failure);
    EXPECT_NE(message_for(Result::permission_denied, {"/s", {}, "reload"}).find("only root may reload"),
              std::string::npos);

    EXPECT_EQ(message_for(Result::declared, {"/s", "db", "delete"}),
              "semaphore db is declared in ipcd's configuration; remove it from /etc/ipcd/ipcd.conf and run "
              "'ipcctl reload'");
    EXPECT_NE(message_for(Result::permission_denied, {"/s", {}, "status", {}, "alice"}).find("(alice)"),
              std::string::npos);
    for (auto r : {Result::bad_config, Result::declared}) {
        const auto m = message_for(r, {"/s", "db", "delete"});
        EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
}

TEST(IpcctlParse, ChannelNamesSessionIdsAndUsers) {
    EXPECT_EQ(parse_channel_name("jobs.in-1_x"), "jobs.in-1_x");
    EXPECT_EQ(parse_channel_name(std::string(200, 'c')), std::string(200, 'c'));
    for (const std::string& bad : {std::string(""), std::string(".x"), std::string("a/b"), std::string(201, 'c'),
                                  std::string("a b")})
        EXPECT_THROW(parse_channel_name(bad), UsageError) << "'" << bad << "'";
    EXPECT_EQ(parse_session_id("7"), 7u);
    for (const char* bad : {"0", "-1", "7x", "", "4294967296"})
        EXPECT_THROW(parse_session_id(bad), UsageError) << "'" << bad << "'";
    EXPECT_EQ(parse_user("0"), 0u);
    EXPECT_EQ(parse_user("root"), 0u);
    EXPECT_EQ(parse_user("1234567"), 1234567u);
    EXPECT_THROW(parse_user("no-such-user-ipcctl-test"), UsageError);
    EXPECT_THROW(parse_user("4294967295"), UsageError);
    EXPECT_THROW(parse_user(""), UsageError);
}
