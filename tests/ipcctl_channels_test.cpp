// tests/ipcctl_channels_test.cpp - `ipcctl channels`, `channel stat` and
// `channel rm` against real named channels and hostile files in /dev/shm,
// and the library calls behind them (ipc/inspect.hpp).
//
// Every test uses names with a prefix of its own (pid and a counter), so
// parallel runs and other users of /dev/shm never meet, and removes its
// files when it ends. A sleeper is a forked child blocked in recv() or
// send(); the test waits for the segment to report it (bounded polling of
// the sleeper count the child itself publishes), never for a fixed time.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipc/channel.hpp"
#include "ipc/inspect.hpp"
#include "ipc/shm_layout.hpp"

#ifndef IPCCTL_PATH
#error "IPCCTL_PATH must name the ipcctl binary"
#endif
#ifndef IPCCTL_COMPLETION
#error "IPCCTL_COMPLETION must name tools/ipcctl.bash-completion"
#endif

namespace {

using namespace std::chrono;
using nlohmann::json;

constexpr uid_t nobody = 65534;
constexpr auto deadline_span = seconds(20);

// --- running ipcctl ------------------------------------------------------------

struct Output {
    int status = -1;
    std::string out;
    std::string err;
};

std::ostream& operator<<(std::ostream& os, const Output& o) {
    return os << "status " << o.status << "\n--- stdout\n" << o.out << "--- stderr\n" << o.err;
}

// Runs ipcctl ARGS (as `uid` if given) and collects its output.
Output ipcctl(std::vector<std::string> args, std::optional<uid_t> uid = std::nullopt) {
    args.insert(args.begin(), IPCCTL_PATH);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out_p[2], err_p[2];
    if (::pipe2(out_p, O_CLOEXEC) != 0 || ::pipe2(err_p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork");
    if (pid == 0) {
        ::dup2(out_p[1], 1);
        ::dup2(err_p[1], 2);
        if (uid && (::setgroups(0, nullptr) != 0 || ::setgid(*uid) != 0 || ::setuid(*uid) != 0)) ::_exit(120);
        ::execv(argv[0], argv.data());
        ::_exit(121);
    }
    ::close(out_p[1]);
    ::close(err_p[1]);
    Output o;
    int fds[2] = {out_p[0], err_p[0]};
    const auto deadline = steady_clock::now() + deadline_span;
    while ((fds[0] >= 0 || fds[1] >= 0) && steady_clock::now() < deadline) {
        pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        if (::poll(p, 2, 100) <= 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i] < 0 || p[i].revents == 0) continue;
            char buf[4096];
            const ssize_t n = ::read(fds[i], buf, sizeof buf);
            if (n <= 0) {
                ::close(fds[i]);
                fds[i] = -1;
            } else {
                (i == 0 ? o.out : o.err).append(buf, static_cast<std::size_t>(n));
            }
        }
    }
    for (int fd : fds)
        if (fd >= 0) {
            ADD_FAILURE() << "ipcctl kept its output open past the deadline";
            ::kill(pid, SIGKILL);
            ::close(fd);
        }
    int raw = 0;
    ::waitpid(pid, &raw, 0);
    o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    return o;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// The entry of `name` in `ipcctl --json channels`, or null.
json find(const json& list, const std::string& name) {
    for (const auto& e : list)
        if (e["name"] == name) return e;
    return nullptr;
}

// --- hostile files -------------------------------------------------------------

// A channel header (and control lines) as bytes, consistent unless the
// caller changes something.
std::vector<std::byte> control_bytes(std::uint32_t kind, std::uint32_t capacity) {
    std::vector<std::byte> b(ipc::shm::slots_offset);
    auto put = [&](std::size_t at, auto v) { std::memcpy(b.data() + at, &v, sizeof v); };
    using H = ipc::shm::ChannelHeader;
    const std::uint32_t slots = ipc::shm::slot_count_for(capacity);
    put(offsetof(H, magic), ipc::shm::channel_magic);
    put(offsetof(H, version), ipc::shm::layout_version);
    put(offsetof(H, kind), kind);
    put(offsetof(H, capacity), capacity);
    put(offsetof(H, slot_size), static_cast<std::uint32_t>(ipc::shm::slot_size_for(kind)));
    put(offsetof(H, slots_offset), static_cast<std::uint64_t>(ipc::shm::slots_offset));
    put(offsetof(H, total_size), static_cast<std::uint64_t>(ipc::shm::channel_bytes(kind, slots)));
    put(offsetof(H, slot_count), slots);
    return b;
}

template <class T>
void patch(std::vector<std::byte>& b, std::size_t at, T v) {
    std::memcpy(b.data() + at, &v, sizeof v);
}

// --- the fixture -----------------------------------------------------------------

class Channels : public ::testing::Test {
protected:
    void SetUp() override {
        static int counter = 0;
        prefix_ = "ipcctl-chtest-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-";
    }

    void TearDown() override {
        for (const auto& d : std::filesystem::directory_iterator("/dev/shm")) {
            const auto file = d.path().filename().string();
            std::error_code ec;
            if (file.rfind("ipc." + prefix_, 0) == 0) std::filesystem::remove_all(d.path(), ec);
        }
        for (pid_t pid : children_) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }

    std::string name(const std::string& suffix) const { return prefix_ + suffix; }
    std::string path(const std::string& suffix) const { return "/dev/shm/ipc." + name(suffix); }

    void write_file(const std::string& suffix, const std::vector<std::byte>& bytes, mode_t mode = 0644) {
        const int fd = ::open(path(suffix).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        ASSERT_GE(fd, 0) << path(suffix) << ": " << std::strerror(errno);
        ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
        ::close(fd);
        ::chmod(path(suffix).c_str(), mode);
    }

    json channels_json() {
        const auto o = ipcctl({"--json", "channels"});
        EXPECT_EQ(o.status, 0) << o;
        return json::parse(o.out);
    }

    // Forks a child that runs `f` (its exit status), killed with the test.
    template <class F>
    pid_t fork_child(F&& f) {
        const pid_t parent = ::getpid();
        const pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork");
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(97);
            int rc = 98;
            try {
                rc = f();
            } catch (...) {
                rc = 99;
            }
            ::_exit(rc);
        }
        children_.push_back(pid);
        return pid;
    }

    static int reap_any(pid_t pid) {
        int raw = 0;
        ::waitpid(pid, &raw, 0);
        return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    }

    int reap(pid_t pid) {
        int raw = 0;
        ::waitpid(pid, &raw, 0);
        std::erase(children_, pid);
        return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    }

    // Polls the segment until `field` of the inspected channel reaches
    // `value` (bounded).
    ::testing::AssertionResult eventually(const std::string& suffix, std::uint32_t ipc::ChannelInfo::*field,
                                          std::uint32_t value) {
        const auto deadline = steady_clock::now() + deadline_span;
        std::uint32_t last = 0;
        while (steady_clock::now() < deadline) {
            const auto e = ipc::inspect_named_channel(name(suffix));
            if (!e.info) return ::testing::AssertionFailure() << e.problem;
            last = (*e.info).*field;
            if (last == value) return ::testing::AssertionSuccess();
            std::this_thread::sleep_for(milliseconds(1));
        }
        return ::testing::AssertionFailure() << "stayed at " << last << ", never " << value;
    }

    std::string prefix_;
    std::vector<pid_t> children_;
};

ipc::Message msg(std::uint64_t v) {
    ipc::Message m;
    m.mr[0] = v;
    return m;
}

// --- real channels ---------------------------------------------------------------------

TEST_F(Channels, ListsRealChannelsWithKindCapacityDepthAndOwner) {
    auto spsc = ipc::Channel::create(name("spsc"), {ipc::ChannelKind::spsc, 8, 0600});
    for (int i = 0; i < 3; ++i) ASSERT_EQ(spsc.try_send(msg(i)), ipc::Status::ok);
    auto mpmc = ipc::Channel::create(name("mpmc"), {ipc::ChannelKind::mpmc, 100, 0640});
    for (int i = 0; i < 5; ++i) ASSERT_EQ(mpmc.try_send(msg(i)), ipc::Status::ok);
    ipc::Message m;
    ASSERT_EQ(mpmc.try_recv(m), ipc::Status::ok);
    auto one = ipc::Channel::create(name("one"), {ipc::ChannelKind::spsc, 1, 0600});
    ASSERT_EQ(one.try_send(msg(1)), ipc::Status::ok);
    auto closed = ipc::Channel::create(name("closed"), {ipc::ChannelKind::mpmc, 4, 0600});
    ASSERT_EQ(closed.try_send(msg(1)), ipc::Status::ok);
    ASSERT_TRUE(closed.close());

    const json list = channels_json();
    const json s = find(list, name("spsc"));
    ASSERT_FALSE(s.is_null()) << list.dump();
    EXPECT_EQ(s["kind"], "spsc");
    EXPECT_EQ(s["capacity"], 8);
    EXPECT_EQ(s["depth"], 3);
    EXPECT_EQ(s["closed"], false);
    EXPECT_EQ(s["sleeping_senders"], 0);
    EXPECT_EQ(s["sleeping_receivers"], 0);
    EXPECT_TRUE(s["problem"].is_null());
    EXPECT_EQ(s["owner"], ::geteuid());
    EXPECT_EQ(s["mode"], "0600");
    EXPECT_EQ(s["path"], path("spsc"));
    EXPECT_EQ(s["size"], ipc::Channel::bytes_needed({ipc::ChannelKind::spsc, 8, 0600}));

    const json mp = find(list, name("mpmc"));
    EXPECT_EQ(mp["kind"], "mpmc");
    EXPECT_EQ(mp["capacity"], 100) << "the capacity asked for, not the 128 slots";
    EXPECT_EQ(mp["depth"], 4);
    EXPECT_EQ(mp["mode"], "0640");
    EXPECT_EQ(find(list, name("one"))["depth"], 1);
    const json c = find(list, name("closed"));
    EXPECT_EQ(c["closed"], true);
    EXPECT_EQ(c["depth"], 1) << "closed, not yet drained";

    const auto o = ipcctl({"channels"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_EQ(o.out.substr(0, o.out.find('\n')),
              "NAME" + std::string(o.out.find("KIND") - 4, ' ') +
                  "KIND  CAPACITY  DEPTH  SENDERS-SLEEPING  RECEIVERS-SLEEPING  CLOSED  OWNER  MODE  PROBLEM");
    // The row of the MPMC channel: name, kind, then the numbers in order.
    const auto row_at = o.out.find("\n" + name("mpmc") + " ");
    ASSERT_NE(row_at, std::string::npos) << o;
    std::istringstream row(o.out.substr(row_at + 1, o.out.find('\n', row_at + 1) - row_at - 1));
    std::string n, kind, cap, depth, ss, rs, cl, owner, mode;
    row >> n >> kind >> cap >> depth >> ss >> rs >> cl >> owner >> mode;
    EXPECT_EQ(kind, "mpmc");
    EXPECT_EQ(cap, "100");
    EXPECT_EQ(depth, "4");
    EXPECT_EQ(ss + rs + cl, "00no");
    EXPECT_EQ(mode, "0640");
    EXPECT_TRUE(contains(o.out, "\n" + name("closed") + " ")) << o;

    const auto noheadings = ipcctl({"channels", "-n"});
    EXPECT_EQ(noheadings.out.find("NAME"), std::string::npos) << noheadings;
}

TEST_F(Channels, SleepingReceiverAndSenderAreCounted) {
    auto ch = ipc::Channel::create(name("sleepy"), {ipc::ChannelKind::spsc, 2, 0600});
    const pid_t receiver = fork_child([&] {
        auto c = ipc::Channel::open(name("sleepy"));
        c.set_spin(nanoseconds::zero());
        ipc::Message m;
        return c.recv(m) == ipc::Status::ok && m.mr[0] == 42 ? 0 : 1;
    });
    ASSERT_TRUE(eventually("sleepy", &ipc::ChannelInfo::sleeping_receivers, 1));

    auto o = ipcctl({"--json", "channel", "stat", name("sleepy")});
    ASSERT_EQ(o.status, 0) << o;
    auto j = json::parse(o.out);
    EXPECT_EQ(j["sleeping_receivers"], 1);
    EXPECT_EQ(j["sleeping_senders"], 0);
    EXPECT_EQ(j["depth"], 0);
    EXPECT_EQ(j["kind"], "spsc");
    EXPECT_EQ(j["version"], ipc::shm::layout_version);
    EXPECT_EQ(j["slot_count"], 2);
    EXPECT_EQ(j["slot_size"], 64);
    EXPECT_EQ(j["slots_offset"], 320);
    EXPECT_EQ(j["creator_pid"], ::getpid());
    EXPECT_EQ(j["head"], 0);
    EXPECT_EQ(j["tail"], 0);
    EXPECT_EQ(find(channels_json(), name("sleepy"))["sleeping_receivers"], 1);
    o = ipcctl({"channel", "stat", name("sleepy")});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_TRUE(contains(o.out, "Sleeping:    0 senders, 1 receivers\n")) << o;
    EXPECT_TRUE(contains(o.out, "Kind:        spsc\n")) << o;
    EXPECT_TRUE(contains(o.out, "Depth:       0 buffered (head 0, tail 0)\n")) << o;

    ASSERT_EQ(ch.send(msg(42)), ipc::Status::ok);
    EXPECT_EQ(reap(receiver), 0);
    EXPECT_TRUE(eventually("sleepy", &ipc::ChannelInfo::sleeping_receivers, 0));

    // Now fill it and let a sender sleep (the receiver took the message).
    ASSERT_EQ(ch.try_send(msg(1)), ipc::Status::ok);
    ASSERT_EQ(ch.try_send(msg(2)), ipc::Status::ok);
    const pid_t sender = fork_child([&] {
        auto c = ipc::Channel::open(name("sleepy"));
        c.set_spin(nanoseconds::zero());
        return c.send(msg(3)) == ipc::Status::closed ? 0 : 1;
    });
    ASSERT_TRUE(eventually("sleepy", &ipc::ChannelInfo::sleeping_senders, 1));
    j = find(channels_json(), name("sleepy"));
    EXPECT_EQ(j["sleeping_senders"], 1);
    EXPECT_EQ(j["depth"], 2);
    ASSERT_TRUE(ch.close());  // wakes the sender with `closed`
    EXPECT_EQ(reap(sender), 0);
}

// --- hostile files ---------------------------------------------------------------------

TEST_F(Channels, FilesThatAreNotChannelsAreListedAsInvalidWithTheReason) {
    write_file("empty", {});
    write_file("short", std::vector<std::byte>(12, std::byte{0x41}));
    std::vector<std::byte> noise(4096);
    std::mt19937 rng(12345);
    for (auto& b : noise) b = static_cast<std::byte>(rng());
    noise[0] = std::byte{0x7f};  // neither 0 nor the magic
    write_file("random", noise);

    auto v7 = control_bytes(ipc::shm::kind_spsc, 4);
    patch(v7, offsetof(ipc::shm::ChannelHeader, version), std::uint32_t{7});
    v7.resize(4096);
    write_file("version7", v7);

    auto huge = control_bytes(ipc::shm::kind_mpmc, 4);
    patch(huge, offsetof(ipc::shm::ChannelHeader, capacity), std::uint32_t{0xffffffff});
    write_file("huge", huge);

    auto claims = control_bytes(ipc::shm::kind_spsc, 1024);  // says 65856 bytes
    claims.resize(4096);
    write_file("claims", claims);

    auto kind9 = control_bytes(ipc::shm::kind_spsc, 4);
    patch(kind9, offsetof(ipc::shm::ChannelHeader, kind), std::uint32_t{9});
    write_file("kind9", kind9);

    auto uninit = control_bytes(ipc::shm::kind_spsc, 4);
    patch(uninit, offsetof(ipc::shm::ChannelHeader, magic), std::uint64_t{0});
    uninit.resize(ipc::shm::channel_bytes(ipc::shm::kind_spsc, 4));
    write_file("uninit", uninit);

    ASSERT_EQ(::symlink("/etc/passwd", path("link").c_str()), 0);
    ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0644), 0);  // opening it would block: must not be opened
    ASSERT_EQ(::mkdir(path("dir").c_str(), 0755), 0);
    write_file("bad name", control_bytes(ipc::shm::kind_spsc, 4));

    const std::vector<std::pair<std::string, std::string>> expected = {
        {"empty", "truncated: 0 bytes"},
        {"short", "truncated: 12 bytes"},
        {"random", "bad magic"},
        {"version7", "version 7 (this libipc knows 1)"},
        {"huge", "bad geometry: capacity 4294967295 (1 to 16777216)"},
        {"claims", "truncated: 4096 bytes, its header says 65856"},
        {"kind9", "bad geometry: kind 9 (neither spsc nor mpmc)"},
        {"uninit", "not initialised (its creator has not finished, or died while creating it)"},
        {"link", "a symbolic link (not followed)"},
        {"fifo", "a FIFO"},
        {"dir", "a directory"},
        {"bad name", "invalid channel name (1-200 characters of A-Z a-z 0-9 . _ - not starting with '.')"},
    };
    const json list = channels_json();
    for (const auto& [suffix, problem] : expected) {
        const json e = find(list, name(suffix));
        ASSERT_FALSE(e.is_null()) << suffix << " missing from " << list.dump();
        EXPECT_EQ(e["kind"], "invalid") << e.dump();
        EXPECT_EQ(e["problem"], problem) << e.dump();
        EXPECT_TRUE(e["capacity"].is_null()) << e.dump();
        EXPECT_TRUE(e["depth"].is_null()) << e.dump();
    }
    EXPECT_EQ(find(list, name("short"))["size"], 12);
    EXPECT_EQ(find(list, name("short"))["mode"], "0644");

    const auto o = ipcctl({"channels"});
    ASSERT_EQ(o.status, 0) << o;
    EXPECT_TRUE(contains(o.out, name("short") + "  ")) << o;
    EXPECT_TRUE(contains(o.out, "  truncated: 12 bytes\n")) << o;
    EXPECT_TRUE(contains(o.out, name("bad") + "\\x20name")) << "names are escaped for the terminal\n" << o;
}

TEST_F(Channels, ChannelStatOfAnInvalidFileShowsTheProblemAndExitsOne) {
    write_file("short", std::vector<std::byte>(12, std::byte{0x41}));
    auto o = ipcctl({"channel", "stat", name("short")});
    EXPECT_EQ(o.status, 1) << o;
    EXPECT_TRUE(contains(o.out, "Kind:    invalid\nProblem: truncated: 12 bytes\n")) << o;
    EXPECT_EQ(o.err, "ipcctl: " + path("short") + " is not a usable channel: truncated: 12 bytes; if nothing uses it, "
                     "remove it with 'ipcctl channel rm " + name("short") + "'\n");
    o = ipcctl({"--json", "channel", "stat", name("short")});
    EXPECT_EQ(o.status, 1) << o;
    const auto j = json::parse(o.out);
    EXPECT_EQ(j["kind"], "invalid");
    EXPECT_EQ(j["problem"], "truncated: 12 bytes");
    EXPECT_TRUE(j["head"].is_null());
}

TEST_F(Channels, LibraryReportsEveryHostileFileWithoutThrowing) {
    write_file("short", std::vector<std::byte>(63, std::byte{0}));
    auto e = ipc::inspect_named_channel(name("short"));
    EXPECT_FALSE(e.valid());
    EXPECT_EQ(e.problem, "truncated: 63 bytes");
    EXPECT_FALSE(e.error);
    EXPECT_TRUE(e.has_stat);
    EXPECT_EQ(e.size, 63u);

    auto v = ipc::Channel::create(name("ok"), {ipc::ChannelKind::mpmc, 16, 0600});
    e = ipc::inspect_named_channel(name("ok"));
    ASSERT_TRUE(e.valid()) << e.problem;
    EXPECT_EQ(e.info->kind, ipc::ChannelKind::mpmc);
    EXPECT_EQ(e.info->capacity, 16u);
    EXPECT_EQ(e.info->total_size, ipc::Channel::bytes_needed({ipc::ChannelKind::mpmc, 16, 0600}));
    EXPECT_TRUE(e.problem.empty());

    try {
        (void)ipc::inspect_named_channel(name("absent"));
        ADD_FAILURE() << "no throw for a missing channel";
    } catch (const std::system_error& ex) {
        EXPECT_EQ(ex.code(), std::errc::no_such_file_or_directory);
    }
    try {
        (void)ipc::inspect_named_channel("../etc/passwd");
        ADD_FAILURE() << "no throw for an invalid name";
    } catch (const std::system_error& ex) {
        EXPECT_EQ(ex.code(), ipc::errc::invalid_name);
    }
}

TEST_F(Channels, AFileTruncatedWhileItIsReadNeverCrashesTheReader) {
    // A valid channel whose owner keeps cutting it to nothing and growing it
    // back: a mapping would take SIGBUS; the reader must just report.
    auto bytes = control_bytes(ipc::shm::kind_spsc, 4);
    bytes.resize(ipc::shm::channel_bytes(ipc::shm::kind_spsc, 4));
    write_file("flicker", bytes);
    const int fd = ::open(path("flicker").c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    std::atomic<bool> stop{false};
    std::thread cutter([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            (void)::ftruncate(fd, 0);
            (void)::pwrite(fd, bytes.data(), bytes.size(), 0);
        }
    });
    int valid = 0, invalid = 0;
    for (int i = 0; i < 3000; ++i) {
        const auto e = ipc::inspect_named_channel(name("flicker"));
        if (e.valid()) {
            ++valid;
        } else {
            ++invalid;
            EXPECT_FALSE(e.problem.empty());
        }
    }
    stop = true;
    cutter.join();
    ::close(fd);
    EXPECT_EQ(valid + invalid, 3000);
}

// --- channel rm, names, permissions -------------------------------------------------------

TEST_F(Channels, ChannelRmRemovesTheSegmentAndSaysWhenThereIsNone) {
    auto ch = ipc::Channel::create(name("gone"), {ipc::ChannelKind::spsc, 4, 0600});
    ASSERT_EQ(ch.try_send(msg(7)), ipc::Status::ok);
    auto o = ipcctl({"channel", "rm", name("gone")});
    EXPECT_EQ(o.status, 0) << o;
    EXPECT_TRUE(o.out.empty() && o.err.empty()) << o;
    EXPECT_NE(::access(path("gone").c_str(), F_OK), 0) << "the file is gone";
    ipc::Message m;
    EXPECT_EQ(ch.try_recv(m), ipc::Status::ok) << "an open handle keeps working";
    EXPECT_TRUE(find(channels_json(), name("gone")).is_null());

    o = ipcctl({"channel", "rm", name("gone")});
    EXPECT_EQ(o.status, 3) << o;
    EXPECT_EQ(o.err, "ipcctl: no channel " + name("gone") + " (" + path("gone") +
                         "): see 'ipcctl channels' for the channels there are\n");
    o = ipcctl({"channel", "rm", "--force", name("gone")});
    EXPECT_EQ(o.status, 0) << o;

    write_file("junk", std::vector<std::byte>(5));  // an invalid file goes the same way
    o = ipcctl({"channel", "rm", name("junk")});
    EXPECT_EQ(o.status, 0) << o;
    EXPECT_NE(::access(path("junk").c_str(), F_OK), 0);
}

TEST_F(Channels, MissingChannelAndBadNamesHaveTheirExitCodes) {
    auto o = ipcctl({"channel", "stat", name("absent")});
    EXPECT_EQ(o.status, 3) << o;
    EXPECT_TRUE(contains(o.err, "no channel " + name("absent"))) << o;
    for (const std::string& bad : {std::string(".hidden"), std::string("a/b"), std::string(201, 'c')}) {
        for (const char* verb : {"stat", "rm"}) {
            o = ipcctl({"channel", verb, bad});
            EXPECT_EQ(o.status, 2) << verb << " " << bad << "\n" << o;
            EXPECT_TRUE(contains(o.err, "invalid channel name")) << o;
            EXPECT_TRUE(contains(o.err, std::string("see 'ipcctl channel ") + verb + " --help'")) << o;
        }
    }
    o = ipcctl({"channel"});
    EXPECT_EQ(o.status, 2) << o;
    EXPECT_TRUE(contains(o.err, "channel needs a verb")) << o;
    o = ipcctl({"channel", "frob", "x"});
    EXPECT_EQ(o.status, 2) << o;
}

TEST_F(Channels, OtherUsersMayNotReadOrRemoveAPrivateChannel) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run ipcctl as another uid";
    auto ch = ipc::Channel::create(name("private"), {ipc::ChannelKind::spsc, 4, 0600});
    auto o = ipcctl({"channel", "stat", name("private")}, nobody);
    EXPECT_EQ(o.status, 4) << o;
    EXPECT_TRUE(contains(o.err, "permission denied reading channel " + name("private"))) << o;

    o = ipcctl({"--json", "channels"}, nobody);
    ASSERT_EQ(o.status, 0) << o;
    const json e = find(json::parse(o.out), name("private"));
    EXPECT_EQ(e["kind"], "invalid");
    EXPECT_EQ(e["problem"], "permission denied: its mode does not let you read it");
    EXPECT_EQ(e["owner"], 0) << "owner and mode still come from lstat";
    EXPECT_EQ(e["mode"], "0600");

    o = ipcctl({"channel", "rm", name("private")}, nobody);
    EXPECT_EQ(o.status, 4) << o;
    EXPECT_EQ(o.err, "ipcctl: permission denied removing channel " + name("private") + " (" + path("private") +
                         "): only its owner or root may remove it\n");
    EXPECT_EQ(::access(path("private").c_str(), F_OK), 0) << "still there";
}

TEST_F(Channels, BashCompletionOffersTheNewVerbsAndChannelNames) {
    auto ch = ipc::Channel::create(name("complete"), {ipc::ChannelKind::spsc, 4, 0600});
    // Sources the completion without the bash-completion package and prints
    // what it offers for each line, one line of output per case.
    const std::string script = std::string(". '") + IPCCTL_COMPLETION + "'\n" +
                               "t() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _ipcctl; "
                               "echo \"${COMPREPLY[*]}\"; }\n"
                               "export IPCD_SOCKET=/nonexistent/ipcd.sock\n"
                               "t ipcctl ''\n"
                               "t ipcctl channel ''\n"
                               "t ipcctl channel stat " + name("compl") + "\n"
                               "t ipcctl channel rm --\n"
                               "t ipcctl sessions --\n"
                               "t ipcctl status --\n"
                               "t ipcctl release-session ''\n";
    std::vector<std::string> args = {"/bin/bash", "-c", script};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::dup2(p[1], 1);
        ::execv(argv[0], argv.data());
        ::_exit(121);
    }
    ::close(p[1]);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    ::close(p[0]);
    ASSERT_EQ(reap_any(pid), 0) << out;
    std::istringstream lines(out);
    std::vector<std::string> got;
    for (std::string l; std::getline(lines, l);) got.push_back(l);
    ASSERT_EQ(got.size(), 7u) << out;
    for (const char* verb : {"sessions", "release-session", "reload", "channels", "channel"})
        EXPECT_TRUE(contains(" " + got[0] + " ", std::string(" ") + verb + " ")) << got[0];
    EXPECT_EQ(got[1], "stat rm");
    EXPECT_EQ(got[2], name("complete"));
    EXPECT_TRUE(contains(got[3], "--force")) << got[3];
    EXPECT_TRUE(contains(got[4], "--noheadings")) << got[4];
    EXPECT_TRUE(contains(got[5], "--user")) << got[5];
    EXPECT_EQ(got[6], "") << "no session ids without a daemon";
}

}  // namespace
