// tests/chaos_soak.cpp - ipcd under kill -9 chaos, checked by a witness that
// never trusts the daemon.
//
//   chaos_soak --ipcd PATH [--duration SECONDS] [--clients N] [--semaphores K]
//              [--kill-interval-ms MS] [--rss-growth-kb KB] [--seed S]
//
// The driver starts a real ipcd on a socket in a temporary directory, creates
// K semaphores "chaos.0".. with 1, 2, 3, 1, ... permits, and runs N client
// processes (this binary re-executed with --client) that loop through the
// real client API (ipc::Session, ipc::Semaphore):
//
//   pick a semaphore and a count -> acquire (blocking, timed or try) ->
//   record the grant in the witness -> hold a little -> erase the record ->
//   release
//
// Meanwhile the driver kill -9s a random client every few milliseconds,
// aiming in turn at one acquiring, one holding, one releasing and any, and
// starts a new client in its place.
//
// The witness (a memfd shared by every process, not ipcd) keeps, per
// semaphore, one 64-bit word with a 2-bit field per client: the permits that
// client holds by its own account. A client adds its count to its field with
// one fetch_add right after the grant (and checks the sum of all fields in
// the value it got back against the permits), and subtracts it with one
// fetch_sub before it sends the release. So the sum of the fields never
// counts a permit that was already released. To kill a client the driver
// first stops it (SIGSTOP, waited for), so it is frozen between two
// instructions; then it marks the victim dead by clearing its fields (a CAS
// on each word), and only then sends SIGKILL. ipcd gives the victim's
// permits back only after it died, so no other client can be granted them
// while they are still counted. The sum may undercount (a grant not recorded
// yet, a dead holder whose permits ipcd has not given back yet), never
// overcount: a sum above the permits is a real violation of the semaphore.
// (To ipcd a stopped-then-killed client is a client killed at that moment.)
//
// Fencing tokens: each client checks that its tokens per semaphore grow, and
// every recorded token sets a bit in a per-semaphore bitmap: a bit already
// set means ipcd granted the same token twice.
//
// At the end (every client told to stop, all exited 0): each semaphore has
// all its permits available, no holders and no waiters; ipcd has one session
// (the driver's), no waiting requests, the same descriptors
// (/proc/PID/fd) and session memfd mappings (/proc/PID/maps,
// "memfd:ipcd-session") as before the clients started, and its RSS grew by
// at most --rss-growth-kb. It prints a summary and exits 0, or 1 with the
// reasons; 77 when the kernel cannot run ipcd (no io_uring futex waits).
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "ipc/semaphore.hpp"
#include "ipcd_launch.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using ipc::proto::Result;
using ipcd_test::launch_ipcd;
using ipcd_test::pidfd_open;

constexpr int exit_skip = 77;
constexpr std::uint32_t max_clients = 32;  // a 2-bit field each in one 64-bit word
constexpr std::uint32_t max_semaphores = 32;
constexpr int shm_fd_in_client = 3;
// Tokens beyond this are still checked for growth, not for uniqueness.
constexpr std::uint64_t token_bits = std::uint64_t{1} << 27;

// --- The witness: shared by the driver and every client --------------------

enum Phase : std::uint32_t { idle = 0, acquiring = 1, holding = 2, releasing = 3, phase_count = 4 };
constexpr const char* phase_name[] = {"idle", "acquire", "hold", "release"};

// The witness word of a semaphore: client i's permits in bits 2i, 2i + 1.
constexpr std::uint64_t field(std::uint32_t client, std::uint64_t n) { return n << (2 * client); }
constexpr std::uint32_t field_of(std::uint64_t word, std::uint32_t client) {
    return static_cast<std::uint32_t>((word >> (2 * client)) & 3);
}
constexpr int sum_of(std::uint64_t word) {
    int sum = 0;
    for (std::uint32_t i = 0; i < max_clients; ++i) sum += static_cast<int>(field_of(word, i));
    return sum;
}
constexpr std::uint32_t max_permits = 3;  // fits a field

struct alignas(64) ClientSlot {
    std::atomic<std::int32_t> pid;
    std::atomic<std::uint32_t> phase;  // Phase, for the driver's aim
    std::atomic<std::uint64_t> grants;
    std::atomic<std::uint64_t> not_granted;  // timed out or would block
};

struct alignas(64) SemWitness {
    std::atomic<std::uint64_t> held;  // a field per client: permits held by its own account
    std::atomic<std::int32_t> max_inside;
    std::atomic<std::uint64_t> checks;
    std::atomic<std::uint64_t> violations;
    std::atomic<std::uint64_t> duplicate_tokens;
    std::atomic<std::uint64_t> grants;
    std::uint32_t permits;  // written by the driver before any client starts
};

struct Shared {
    std::atomic<std::uint32_t> stop;
    std::atomic<std::uint32_t> failures;  // clients that saw something wrong
    char first_failure[256];              // written by the first one (guarded by `failures`)
    ClientSlot clients[max_clients];
    SemWitness sems[max_semaphores];
    // Then max_semaphores bitmaps of token_bits bits each.
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "the witness is shared between processes");
static_assert(std::atomic<std::int32_t>::is_always_lock_free, "the witness is shared between processes");
static_assert(std::is_standard_layout_v<Shared>, "shared memory holds standard-layout data only");

constexpr std::size_t bitmap_words = token_bits / 64;
constexpr std::size_t shared_bytes = sizeof(Shared) + std::size_t{max_semaphores} * bitmap_words * 8;

std::atomic<std::uint64_t>* token_bitmap(Shared* s, std::uint32_t sem) {
    auto* base = reinterpret_cast<std::atomic<std::uint64_t>*>(reinterpret_cast<char*>(s) + sizeof(Shared));
    return base + std::size_t{sem} * bitmap_words;
}

[[gnu::format(printf, 2, 3)]] void fail(Shared* s, const char* fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    // Relaxed: the text is read by the driver only after this process exited.
    const std::uint32_t n = s->failures.fetch_add(1, std::memory_order_relaxed);
    if (n == 0) std::memcpy(s->first_failure, buf, sizeof buf);
    if (n < 10) std::fprintf(stderr, "chaos_soak[%d]: %s\n", ::getpid(), buf);
}

std::string sem_name(std::uint32_t k) { return "chaos." + std::to_string(k); }

// --- Options ---------------------------------------------------------------------

struct Options {
    std::string ipcd = IPCD_PATH;
    double duration = 30;
    std::uint32_t clients = 8;
    std::uint32_t semaphores = 3;
    std::uint32_t kill_interval_ms = 20;
    std::uint64_t rss_growth_kb = 16384;
    std::uint64_t seed = 0;
    // Client mode (this binary re-executed by the driver).
    int client = -1;
    std::string socket;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "chaos_soak: %s\n"
                 "usage: chaos_soak [--ipcd PATH] [--duration SECONDS] [--clients N (1-%u)]\n"
                 "                  [--semaphores K (1-%u)] [--kill-interval-ms MS] [--rss-growth-kb KB]\n"
                 "                  [--seed S]\n",
                 why, max_clients, max_semaphores);
    std::exit(2);
}

template <class T>
T number(std::string_view s, const char* what) {
    T v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) usage((std::string("bad number for ") + what).c_str());
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) usage((std::string(a) + " needs a value").c_str());
            return argv[++i];
        };
        if (a == "--ipcd") o.ipcd = value();
        else if (a == "--duration") o.duration = number<double>(value(), "--duration");
        else if (a == "--clients") o.clients = number<std::uint32_t>(value(), "--clients");
        else if (a == "--semaphores") o.semaphores = number<std::uint32_t>(value(), "--semaphores");
        else if (a == "--kill-interval-ms") o.kill_interval_ms = number<std::uint32_t>(value(), "--kill-interval-ms");
        else if (a == "--rss-growth-kb") o.rss_growth_kb = number<std::uint64_t>(value(), "--rss-growth-kb");
        else if (a == "--seed") o.seed = number<std::uint64_t>(value(), "--seed");
        else if (a == "--client") o.client = number<int>(value(), "--client");
        else if (a == "--socket") o.socket = value();
        else if (a == "--help" || a == "-h") usage("chaos soak of ipcd");
        else usage(("unknown argument " + std::string(a)).c_str());
    }
    if (o.clients < 1 || o.clients > max_clients) usage("--clients out of range");
    static_assert(max_permits <= 3, "a client's witness field has 2 bits");
    if (o.semaphores < 1 || o.semaphores > max_semaphores) usage("--semaphores out of range");
    if (!(o.duration > 0)) usage("--duration must be positive");
    return o;
}

// --- Client ------------------------------------------------------------------------

int run_client(const Options& o, Shared* sh) {
    const auto me = static_cast<std::uint32_t>(o.client);
    ClientSlot& slot = sh->clients[me];
    auto session = ipc::Session::connect(o.socket);
    std::vector<ipc::Semaphore> sems;
    for (std::uint32_t k = 0; k < o.semaphores; ++k) sems.push_back(ipc::Semaphore::open(session, sem_name(k)));
    std::vector<std::uint64_t> last_token(o.semaphores, 0);
    std::mt19937_64 rng(o.seed ^ (static_cast<std::uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull));
    const auto timed_out = ipc::proto::make_error_code(Result::timed_out);
    const auto would_block = ipc::proto::make_error_code(Result::would_block);

    // Relaxed for phase and counters: reports, not synchronisation. The
    // witness words are the checked state (seq_cst RMWs).
    while (sh->stop.load(std::memory_order_relaxed) == 0) {
        const auto k = static_cast<std::uint32_t>(rng() % o.semaphores);
        SemWitness& w = sh->sems[k];
        const auto n = static_cast<std::uint32_t>(1 + rng() % w.permits);
        slot.phase.store(acquiring, std::memory_order_relaxed);
        std::error_code ec;
        switch (rng() % 4) {
            case 0: ec = sems[k].acquire(n); break;
            case 1: ec = sems[k].try_acquire(n); break;
            default: ec = sems[k].acquire_for(n, std::chrono::microseconds(rng() % 20000)); break;
        }
        if (ec == timed_out || ec == would_block) {
            slot.not_granted.fetch_add(1, std::memory_order_relaxed);
            slot.phase.store(idle, std::memory_order_relaxed);
            continue;
        }
        if (ec) {
            fail(sh, "client %u: acquire %u of %s: %s", me, n, sem_name(k).c_str(), ec.message().c_str());
            return 1;
        }
        const std::uint64_t token = sems[k].fencing_token();
        if (token <= last_token[k]) {
            fail(sh, "client %u: token %llu of %s after %llu", me, static_cast<unsigned long long>(token),
                 sem_name(k).c_str(), static_cast<unsigned long long>(last_token[k]));
            return 1;
        }
        last_token[k] = token;
        if (token < token_bits) {
            const std::uint64_t bit = std::uint64_t{1} << (token % 64);
            if (token_bitmap(sh, k)[token / 64].fetch_or(bit, std::memory_order_relaxed) & bit)
                w.duplicate_tokens.fetch_add(1);
        }
        // Record the grant and see everybody else's in the same step.
        const int now = sum_of(w.held.fetch_add(field(me, n))) + static_cast<int>(n);
        w.checks.fetch_add(1, std::memory_order_relaxed);
        if (now > static_cast<int>(w.permits)) {
            w.violations.fetch_add(1);
            fail(sh, "client %u: %d permits of %s held at once, it has %u", me, now, sem_name(k).c_str(), w.permits);
        }
        int seen = w.max_inside.load();
        while (now > seen && !w.max_inside.compare_exchange_weak(seen, now)) {
        }
        w.grants.fetch_add(1, std::memory_order_relaxed);
        slot.grants.fetch_add(1, std::memory_order_relaxed);
        slot.phase.store(holding, std::memory_order_relaxed);
        // Hold for 0-200 us: sometimes spinning, sometimes asleep.
        const auto hold = std::chrono::microseconds(rng() % 200);
        if (rng() % 2) {
            std::this_thread::sleep_for(hold);
        } else {
            const auto end = Clock::now() + hold;
            while (Clock::now() < end) {
            }
        }
        // Erase the record before the release.
        w.held.fetch_sub(field(me, n));
        slot.phase.store(releasing, std::memory_order_relaxed);
        if (auto rec = sems[k].release(n)) {
            fail(sh, "client %u: release %u of %s: %s", me, n, sem_name(k).c_str(), rec.message().c_str());
            return 1;
        }
        slot.phase.store(idle, std::memory_order_relaxed);
    }
    return 0;
}

// --- Driver: ipcd --------------------------------------------------------------------

bool kernel_has_uring_futex_wait() {
    io_uring ring;
    if (io_uring_queue_init(2, &ring, 0) < 0) return false;
    io_uring_probe* p = io_uring_get_probe_ring(&ring);
    const bool ok = p && io_uring_opcode_supported(p, 51 /* IORING_OP_FUTEX_WAIT */);
    if (p) io_uring_free_probe(p);
    io_uring_queue_exit(&ring);
    return ok;
}

// ipcd --socket DIR/ipcd.sock, ready once it sends READY=1. Never the
// machine's configuration file or state directory.
pid_t start_ipcd(const std::string& ipcd, const std::string& dir) {
    return launch_ipcd({ipcd, "--socket", dir + "/ipcd.sock", "--config", "/dev/null", "--state-dir", dir + "/state"},
                       dir + "/ipcd.log", dir + "/notify");
}

struct ProcFacts {
    std::size_t fds = 0;
    std::size_t session_maps = 0;
    std::uint64_t rss_kb = 0;
};

ProcFacts proc_facts(pid_t pid) {
    ProcFacts f;
    const std::string base = "/proc/" + std::to_string(pid);
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(base + "/fd", ec); !ec && it != std::filesystem::end(it);
         it.increment(ec))
        ++f.fds;
    std::ifstream maps(base + "/maps");
    for (std::string line; std::getline(maps, line);)
        if (line.find("memfd:ipcd-session") != std::string::npos) ++f.session_maps;
    std::ifstream status(base + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) f.rss_kb = std::strtoull(line.c_str() + 6, nullptr, 10);
    return f;
}

// --- Driver: clients -------------------------------------------------------------------

pid_t spawn_client(const Options& o, int shm_fd, std::uint32_t index, const std::string& socket) {
    std::vector<std::string> args{"/proc/self/exe", "--client", std::to_string(index), "--socket", socket,
                                  "--semaphores", std::to_string(o.semaphores), "--seed", std::to_string(o.seed)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, shm_fd, shm_fd_in_client);
    pid_t pid = -1;
    std::fflush(nullptr);
    const int rc = ::posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "posix_spawn client");
    return pid;
}

// Exit code, or 128 + signal; -1 if still running (with `block` false).
int reap(pid_t pid, bool block) {
    int st = 0;
    pid_t r;
    while ((r = ::waitpid(pid, &st, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r == 0) return -1;
    if (r < 0) return 255;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

template <class P>
bool eventually(P&& pred, std::chrono::milliseconds timeout) {
    const auto end = Clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (Clock::now() > end) return false;
        std::this_thread::sleep_for(2ms);
    }
}

int run_driver(const Options& o) {
    if (!kernel_has_uring_futex_wait()) {
        std::printf("chaos_soak: SKIP: this kernel lacks io_uring futex waits (Linux 6.7+), which ipcd needs\n");
        return exit_skip;
    }
    char tmpl[] = "/tmp/ipcd-chaos-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    const std::string dir = tmpl;
    const pid_t ipcd = start_ipcd(o.ipcd, dir);
    const std::string socket = dir + "/ipcd.sock";

    const int shm_fd = ::memfd_create("chaos-witness", MFD_CLOEXEC);
    if (shm_fd < 0 || ::ftruncate(shm_fd, static_cast<off_t>(shared_bytes)) != 0)
        throw std::system_error(errno, std::generic_category(), "witness memfd");
    void* mem = ::mmap(nullptr, shared_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, shm_fd, 0);
    if (mem == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "map witness");
    auto* sh = new (mem) Shared{};

    auto session = ipc::Session::connect(socket);
    std::vector<ipc::Semaphore> sems;
    for (std::uint32_t k = 0; k < o.semaphores; ++k) {
        sh->sems[k].permits = 1 + k % max_permits;
        sems.push_back(ipc::Semaphore::create(session, sem_name(k), sh->sems[k].permits, 0600));
    }
    const ProcFacts before = proc_facts(ipcd);

    std::mt19937_64 rng(o.seed ? o.seed : static_cast<std::uint64_t>(::getpid()));
    std::vector<pid_t> pids(o.clients, -1);
    auto start_client = [&](std::uint32_t i) {
        sh->clients[i].phase.store(idle, std::memory_order_relaxed);
        pids[i] = spawn_client(o, shm_fd, i, socket);
        sh->clients[i].pid.store(pids[i], std::memory_order_relaxed);
    };
    for (std::uint32_t i = 0; i < o.clients; ++i) start_client(i);

    std::array<std::uint64_t, phase_count> kills{};
    std::uint64_t respawns = 0, unexpected_exits = 0, driver_checks = 0;
    std::vector<std::string> problems;
    const auto t0 = Clock::now();
    const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
    auto next_report = t0 + 60s;
    std::uint32_t aim = 0;  // acquiring, holding, releasing, any, acquiring, ...
    while (Clock::now() < end) {
        // Wait a random 0..2x interval, checking the witness and reaping
        // clients that died on their own (a failed check).
        const auto pause_until = Clock::now() + std::chrono::microseconds(rng() % (2000 * o.kill_interval_ms + 1));
        do {
            for (std::uint32_t k = 0; k < o.semaphores; ++k) {
                ++driver_checks;
                if (sum_of(sh->sems[k].held.load()) > static_cast<int>(sh->sems[k].permits))
                    sh->sems[k].violations.fetch_add(1);
            }
            for (std::uint32_t i = 0; i < o.clients; ++i) {
                if (const int rc = reap(pids[i], false); rc >= 0) {
                    ++unexpected_exits;
                    problems.push_back("client " + std::to_string(i) + " exited by itself with " + std::to_string(rc));
                    start_client(i);
                }
            }
            std::this_thread::sleep_for(200us);
        } while (Clock::now() < pause_until);

        // Aim: look (for up to 20 ms) for a client in the wanted phase.
        const std::uint32_t want = aim++ % 4;  // 0..2 -> acquiring..releasing, 3 -> any
        std::uint32_t victim = static_cast<std::uint32_t>(rng() % o.clients);
        if (want < 3) {
            const auto give_up = Clock::now() + 20ms;
            bool found = false;
            while (!found && Clock::now() < give_up) {
                for (std::uint32_t j = 0; j < o.clients && !found; ++j) {
                    const std::uint32_t c = (victim + j) % o.clients;
                    if (sh->clients[c].phase.load(std::memory_order_relaxed) == want + 1) {
                        victim = c;
                        found = true;
                    }
                }
            }
        }
        ClientSlot& slot = sh->clients[victim];
        // Freeze it, then mark it dead in the witness (its grants no longer
        // count), then kill it: a frozen client cannot change the witness
        // behind our back, and ipcd frees its permits only once it is dead.
        ::kill(pids[victim], SIGSTOP);
        siginfo_t si{};
        while (::waitid(P_PID, static_cast<id_t>(pids[victim]), &si, WSTOPPED | WEXITED | WNOWAIT) < 0 &&
               errno == EINTR) {
        }
        for (std::uint32_t k = 0; k < o.semaphores; ++k) {
            std::uint64_t w = sh->sems[k].held.load();
            // CAS: other clients keep changing their own fields; on failure
            // `w` is the new word and we clear the victim's field in it again.
            while (field_of(w, victim) != 0 &&
                   !sh->sems[k].held.compare_exchange_weak(w, w & ~field(victim, 3))) {
            }
        }
        const std::uint32_t phase = slot.phase.load(std::memory_order_relaxed);
        ::kill(pids[victim], SIGKILL);
        const int rc = reap(pids[victim], true);
        if (rc != 128 + SIGKILL) {
            ++unexpected_exits;
            problems.push_back("client " + std::to_string(victim) + " ended with " + std::to_string(rc) +
                               " before its kill");
        }
        ++kills[phase < phase_count ? phase : idle];
        start_client(victim);
        ++respawns;
        if (Clock::now() >= next_report) {
            next_report += 60s;
            std::uint64_t g = 0;
            for (std::uint32_t k = 0; k < o.semaphores; ++k) g += sh->sems[k].grants.load(std::memory_order_relaxed);
            const ProcFacts f = proc_facts(ipcd);
            std::printf("chaos_soak: %.0f s: %llu kills, %llu grants, ipcd %zu fds, %llu kB RSS\n",
                        std::chrono::duration<double>(Clock::now() - t0).count(),
                        static_cast<unsigned long long>(kills[0] + kills[1] + kills[2] + kills[3]),
                        static_cast<unsigned long long>(g), f.fds, static_cast<unsigned long long>(f.rss_kb));
            std::fflush(stdout);
        }
    }

    // Stop: every client finishes its round (waiters get their grants as the
    // others release) and exits 0.
    sh->stop.store(1);
    for (std::uint32_t i = 0; i < o.clients; ++i) {
        const int pfd = pidfd_open(pids[i]);
        pollfd p{pfd, POLLIN, 0};
        const bool done = pfd < 0 || ::poll(&p, 1, 30000) > 0;
        if (pfd >= 0) ::close(pfd);
        if (!done) {
            problems.push_back("client " + std::to_string(i) + " did not stop within 30 s");
            ::kill(pids[i], SIGKILL);
        }
        if (const int rc = reap(pids[i], true); rc != 0)
            problems.push_back("client " + std::to_string(i) + " ended with " + std::to_string(rc) + " at the end");
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

    // Everything back where it started.
    for (std::uint32_t k = 0; k < o.semaphores; ++k) {
        ipc::SemaphoreInfo info;
        const bool settled = eventually(
            [&] {
                info = sems[k].stat(true);
                return info.available == info.permits && info.holders.empty() && info.waiters.empty();
            },
            10s);
        if (!settled)
            problems.push_back(sem_name(k) + ": " + std::to_string(info.available) + " of " +
                               std::to_string(info.permits) + " permits available, " +
                               std::to_string(info.holders.size()) + " holders, " +
                               std::to_string(info.waiters.size()) + " waiters at the end");
        const SemWitness& w = sh->sems[k];
        if (w.violations.load()) problems.push_back(sem_name(k) + ": witness saw more holders than permits");
        if (w.held.load() != 0) problems.push_back(sem_name(k) + ": the witness still counts holders at the end");
        if (w.duplicate_tokens.load()) problems.push_back(sem_name(k) + ": a fencing token was granted twice");
    }
    ipc::DaemonStatus st{};
    if (!eventually(
            [&] {
                st = session->status();
                return st.sessions == 1 && st.waiting == 0;
            },
            10s))
        problems.push_back("ipcd still has " + std::to_string(st.sessions) + " sessions and " +
                           std::to_string(st.waiting) + " waiting requests");
    ProcFacts after{};
    if (!eventually(
            [&] {
                after = proc_facts(ipcd);
                return after.fds == before.fds && after.session_maps == before.session_maps;
            },
            10s))
        problems.push_back("ipcd descriptors " + std::to_string(before.fds) + " -> " + std::to_string(after.fds) +
                           ", session mappings " + std::to_string(before.session_maps) + " -> " +
                           std::to_string(after.session_maps));
    if (after.rss_kb > before.rss_kb + o.rss_growth_kb)
        problems.push_back("ipcd RSS grew from " + std::to_string(before.rss_kb) + " kB to " +
                           std::to_string(after.rss_kb) + " kB (bound: +" + std::to_string(o.rss_growth_kb) + " kB)");
    if (sh->failures.load())
        problems.push_back(std::to_string(sh->failures.load()) + " client failures, first: " + sh->first_failure);
    if (reap(ipcd, false) >= 0) problems.push_back("ipcd died");

    // Summary.
    std::uint64_t grants = 0, not_granted = 0, checks = 0;
    for (std::uint32_t i = 0; i < o.clients; ++i) not_granted += sh->clients[i].not_granted.load();
    std::printf("chaos_soak: %.1f s, %u clients, %u semaphores, kill every ~%u ms\n", seconds, o.clients,
                o.semaphores, o.kill_interval_ms);
    std::printf("  kills: %llu in acquire, %llu holding, %llu in release, %llu idle (%llu respawns)\n",
                static_cast<unsigned long long>(kills[acquiring]), static_cast<unsigned long long>(kills[holding]),
                static_cast<unsigned long long>(kills[releasing]), static_cast<unsigned long long>(kills[idle]),
                static_cast<unsigned long long>(respawns));
    for (std::uint32_t k = 0; k < o.semaphores; ++k) {
        const SemWitness& w = sh->sems[k];
        grants += w.grants.load();
        checks += w.checks.load();
        std::printf("  %s: %u permits, %llu grants recorded, max %d held at once, last token %llu\n",
                    sem_name(k).c_str(), w.permits, static_cast<unsigned long long>(w.grants.load()),
                    w.max_inside.load(), static_cast<unsigned long long>(sems[k].stat(false).last_token));
    }
    std::printf("  grants %llu, not granted (timed out / would block) %llu, witness checks %llu by clients + %llu "
                "by the driver\n",
                static_cast<unsigned long long>(grants), static_cast<unsigned long long>(not_granted),
                static_cast<unsigned long long>(checks), static_cast<unsigned long long>(driver_checks));
    std::printf("  ipcd: %zu -> %zu fds, %zu -> %zu session mappings, RSS %llu -> %llu kB\n", before.fds,
                after.fds, before.session_maps, after.session_maps, static_cast<unsigned long long>(before.rss_kb),
                static_cast<unsigned long long>(after.rss_kb));
    if (kills[acquiring] == 0 || kills[holding] == 0)
        problems.push_back("the driver never hit a client in acquire or while holding");
    if (grants == 0) problems.push_back("no grants at all");

    sems.clear();
    session.reset();
    ::kill(ipcd, SIGTERM);
    reap(ipcd, true);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    for (const auto& p : problems) std::printf("FAIL: %s\n", p.c_str());
    std::printf("chaos_soak: %s\n", problems.empty() ? "PASS" : "FAIL");
    return problems.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    try {
        if (o.client >= 0) {
            if (static_cast<std::uint32_t>(o.client) >= max_clients) usage("--client out of range");
            void* mem = ::mmap(nullptr, shared_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                               shm_fd_in_client, 0);
            if (mem == MAP_FAILED) return 3;
            ::close(shm_fd_in_client);
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            try {
                return run_client(o, static_cast<Shared*>(mem));
            } catch (const std::exception& e) {
                fail(static_cast<Shared*>(mem), "client %d: %s", o.client, e.what());
                return 1;
            }
        }
        return run_driver(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "chaos_soak: %s\n", e.what());
        return 1;
    }
}
