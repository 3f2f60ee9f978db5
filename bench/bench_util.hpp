// bench/bench_util.hpp - process plumbing and the ratio table for the benchmarks.
//
// Every benchmark in bench/ runs its peer in a forked child and measures in
// the parent. This header gives them the same few pieces:
//
//   Shared<T>        a T in a MAP_SHARED anonymous mapping, inherited by fork
//   Child            fork(), run a function in the child, _exit; the parent
//                    joins it, or kills and reaps it if the benchmark bails out
//   PinToCpu         sched_setaffinity for the parent and the children it forks
//   Watchdog         alarm(2) per benchmark call: a hang ends the binary
//   futex_* / relax  bare shared futexes and the spin hint, for the floors
//   RatioReporter    the console output plus a final table of medians, each
//                    figure's ratio to this project's, and the targets
//
// Children always leave through _exit: no destructors, no stdio flush, no
// benchmark library state in the child.
#pragma once

#include <errno.h>  // program_invocation_short_name
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

namespace bench {

// Ends the process on a broken set-up or a broken transport. In a child this
// shows up in the parent as a failed join(); in the parent it ends the run.
[[noreturn]] inline void die(const char* what, int err = errno) {
    std::fprintf(stderr, "channel_bench[%d]: %s: %s\n", static_cast<int>(::getpid()), what, std::strerror(err));
    ::_exit(111);
}

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

// The back-off of every spin loop in the benchmarks (ours and the floors
// alike): pause while the peer is presumably running on the other CPU, and
// after ~50 us of failures yield, so that a peer the scheduler put on our
// CPU (the machine is shared) gets to run. Yielding is not sleeping: the
// process stays runnable.
class Backoff {
public:
    void operator()() noexcept {
        if (++failures_ < 1024) {
            cpu_relax();
        } else {
            ::sched_yield();
        }
    }

private:
    unsigned failures_ = 0;
};

// Makes the compiler materialise all of `v` in memory, as if something read
// it, without the global "memory" clobber of benchmark::DoNotOptimize (which
// would force every handle's cached indices to be reloaded). Used on every
// received message so that each transport copies the full 64 bytes out.
template <class T>
inline void consume_bytes(const T& v) noexcept {
    asm volatile("" : : "m"(v));
}

// --- Shared memory -----------------------------------------------------------

template <class T>
class Shared {
public:
    Shared() {
        void* p = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) die("mmap shared");
        ptr_ = new (p) T{};
    }
    ~Shared() {
        ptr_->~T();
        ::munmap(ptr_, bytes());
    }
    Shared(const Shared&) = delete;
    Shared& operator=(const Shared&) = delete;
    T* operator->() const noexcept { return ptr_; }
    T& operator*() const noexcept { return *ptr_; }
    T* get() const noexcept { return ptr_; }

private:
    static std::size_t bytes() noexcept { return (sizeof(T) + 4095) / 4096 * 4096; }
    T* ptr_;
};

// --- Futexes (shared: the peer is another process) ------------------------------

inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
    ::syscall(SYS_futex, &word, FUTEX_WAIT, expected, nullptr, nullptr, 0);
}
inline void futex_wake(std::atomic<std::uint32_t>& word, int n) noexcept {
    ::syscall(SYS_futex, &word, FUTEX_WAKE, n, nullptr, nullptr, 0);
}

// Spins briefly, then yields, until pred() holds. For waits in the measuring
// parent that must not starve a child sharing its CPU.
template <class Pred>
inline void wait_until(Pred&& pred) noexcept {
    for (int i = 0; i < 4000; ++i) {
        if (pred()) return;
        cpu_relax();
    }
    while (!pred()) ::sched_yield();
}

// --- Processes -----------------------------------------------------------------

class Child {
public:
    Child() = default;
    // Runs body() in a new process, pinned to `cpu` if it is >= 0 (else on
    // the parent's CPUs).
    template <class F>
    explicit Child(F&& body, int cpu = -1) {
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) die("fork");
        if (pid_ == 0) {
            // Die with the parent (a crashed or killed benchmark leaves nothing).
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(112);
            if (cpu >= 0) {
                cpu_set_t one;
                CPU_ZERO(&one);
                CPU_SET(cpu, &one);
                if (::sched_setaffinity(0, sizeof(one), &one) != 0) die("sched_setaffinity (child)");
            }
            body();
            ::_exit(0);
        }
    }
    Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)), ok_(o.ok_) {}
    Child& operator=(Child&& o) noexcept {
        std::swap(pid_, o.pid_);
        std::swap(ok_, o.ok_);
        return *this;
    }
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            reap();
        }
    }
    // Waits for the child (once; later calls repeat the answer); true if it
    // exited with status 0.
    bool join() {
        if (pid_ > 0) {
            const int status = reap();
            ok_ = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        return ok_;
    }

private:
    int reap() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return status;
    }
    pid_t pid_ = -1;
    bool ok_ = false;
};

// Where the two processes of a benchmark run:
//   split  parent on CPU 0, child on CPU 1: every hop crosses CPUs, and the
//          scheduler cannot stack both on one CPU behind someone's compiler
//   same   both on CPU 0: a spinning side keeps its peer from running
enum class Placement { split, same };

// Pins this process (and so every child it forks while pinned) to one CPU;
// restores the previous mask at scope exit.
class PinToCpu {
public:
    explicit PinToCpu(int cpu) {
        if (::sched_getaffinity(0, sizeof(saved_), &saved_) != 0) die("sched_getaffinity");
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (::sched_setaffinity(0, sizeof(one), &one) != 0) die("sched_setaffinity");
    }
    ~PinToCpu() { ::sched_setaffinity(0, sizeof(saved_), &saved_); }
    PinToCpu(const PinToCpu&) = delete;
    PinToCpu& operator=(const PinToCpu&) = delete;

private:
    cpu_set_t saved_;
};

// One benchmark call (set-up, all iterations, tear-down) must finish within
// `seconds`, else the binary exits; the children follow (PDEATHSIG), and a
// benchmark's temporary files (e.g. /tmp/ipcd-bench-*) stay behind.
class Watchdog {
public:
    explicit Watchdog(const char* name, unsigned seconds = 120) {
        current() = name;
        struct sigaction sa {};
        sa.sa_handler = [](int) {
            static const char msg[] = ": watchdog: this benchmark hung, giving up: ";
            ssize_t r = ::write(2, program_invocation_short_name, std::strlen(program_invocation_short_name));
            r = ::write(2, msg, sizeof msg - 1);
            r = ::write(2, current(), std::strlen(current()));
            r = ::write(2, "\n", 1);
            (void)r;
            ::_exit(3);
        };
        ::sigaction(SIGALRM, &sa, nullptr);
        ::alarm(seconds);
    }
    ~Watchdog() { ::alarm(0); }
    static const char*& current() {
        static const char* name = "";
        return name;
    }
};

// --- The ratio table ---------------------------------------------------------------

// What a benchmark measures and which of this project's figures it is read
// against. `ref` empty: the row is this project's own reference.
struct Meta {
    std::string group;  // heading in the table
    bool latency;       // true: ns per round trip (lower is better); false: msg/s
    std::string ref;    // the ipc benchmark this one is compared with
    std::string what;   // one line for the table
};

// A target from the brief, written as ours/peer on the benchmark's own metric
// (time for latency, rate for throughput) compared with `bound`.
struct Target {
    std::string what;
    std::string ours;
    std::string peer;
    enum Op { at_least, at_most, below } op;
    double bound;
};

// Every registered benchmark with its metadata, in registration order.
inline std::vector<std::pair<std::string, Meta>>& registry() {
    static std::vector<std::pair<std::string, Meta>> v;
    return v;
}
inline const Meta* find_meta(const std::string& name) {
    for (const auto& [n, m] : registry())
        if (n == name) return &m;
    return nullptr;
}

// Wraps the console reporter: prints what it prints, keeps the figure of
// every iteration run (each repetition is one), and at the end prints
// medians, spreads, ratios and the targets.
class RatioReporter : public benchmark::ConsoleReporter {
public:
    RatioReporter(std::vector<Target> targets, OutputOptions opts)
        : ConsoleReporter(opts), targets_(std::move(targets)) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& r : runs) {
            if (r.run_type != Run::RT_Iteration || r.error_occurred || r.iterations == 0) continue;
            // The function name alone: str() appends "/real_time" or "/manual_time".
            const std::string name = r.run_name.function_name;
            const Meta* m = find_meta(name);
            if (!m) continue;
            if (m->latency) {
                // real_accumulated_time is in seconds (manual time if used).
                samples_[name].push_back(r.real_accumulated_time / static_cast<double>(r.iterations) * 1e9);
            } else if (auto c = r.counters.find("items_per_second"); c != r.counters.end()) {
                samples_[name].push_back(c->second.value);
            }
        }
    }

    void Finalize() override {
        ConsoleReporter::Finalize();
        GetOutputStream().flush();
        if (samples_.empty()) return;
        std::FILE* out = stdout;
        std::size_t runs = 0;
        for (const auto& [k, v] : samples_) runs = std::max(runs, v.size());
        std::fprintf(out,
                     "\nMedians of %zu run(s) each; best = fastest run; spread = (max - min) / median.\n"
                     "'ipc x' = how many times better the ipc figure in 'vs' is (medians): peer time / ipc\n"
                     "time, or ipc rate / peer rate.\n",
                     runs);
        auto format = [](const Meta& m, double v) {
            char buf[32];
            if (m.latency)
                std::snprintf(buf, sizeof buf, "%.0f ns", v);
            else
                std::snprintf(buf, sizeof buf, "%.2f M/s", v / 1e6);
            return std::string(buf);
        };
        std::string group;
        for (const auto& [name, m] : registry()) {
            if (!samples_.count(name)) continue;
            if (m.group != group) {
                group = m.group;
                std::fprintf(out, "\n%s\n  %-30s %12s %12s %7s  %-29s %6s  %s\n", group.c_str(), "benchmark",
                             m.latency ? "median rt" : "median", m.latency ? "best rt" : "best", "spread", "vs",
                             "ipc x", "what");
            }
            const double v = median(name);
            char ratio[32] = "";
            if (!m.ref.empty() && samples_.count(m.ref))
                std::snprintf(ratio, sizeof ratio, "%.2f", m.latency ? v / median(m.ref) : median(m.ref) / v);
            std::fprintf(out, "  %-30s %12s %12s %6.0f%%  %-29s %6s  %s\n", name.c_str(), format(m, v).c_str(),
                         format(m, best(name, m.latency)).c_str(), spread(name) * 100, m.ref.c_str(), ratio,
                         m.what.c_str());
        }
        std::fprintf(out, "\n%-52s %9s %9s\n", "Targets (ratio = ours / peer on the metric)", "ratio", "target");
        for (const Target& t : targets_) {
            if (!samples_.count(t.ours) || !samples_.count(t.peer)) continue;
            const double r = median(t.ours) / median(t.peer);
            bool ok = false;
            const char* op = "";
            switch (t.op) {
                case Target::at_least: ok = r >= t.bound, op = ">="; break;
                case Target::at_most: ok = r <= t.bound, op = "<="; break;
                case Target::below: ok = r < t.bound, op = "<"; break;
            }
            char bound[32];
            std::snprintf(bound, sizeof bound, "%s %.3g", op, t.bound);
            std::fprintf(out, "  %-50s %9.3f %9s  %s\n", t.what.c_str(), r, bound, ok ? "reached" : "NOT REACHED");
        }
        std::fflush(out);
    }

private:
    double median(const std::string& name) const {
        std::vector<double> v = samples_.at(name);
        std::sort(v.begin(), v.end());
        const std::size_t n = v.size();
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
    double best(const std::string& name, bool latency) const {
        const auto& v = samples_.at(name);
        return latency ? *std::min_element(v.begin(), v.end()) : *std::max_element(v.begin(), v.end());
    }
    double spread(const std::string& name) const {
        const auto& v = samples_.at(name);
        auto [lo, hi] = std::minmax_element(v.begin(), v.end());
        return (*hi - *lo) / median(name);
    }

    std::vector<Target> targets_;
    std::map<std::string, std::vector<double>> samples_;
};

// Registers fn under `name` with its table metadata. Latency benchmarks time
// the loop in real time; throughput ones set their own iteration times.
inline benchmark::internal::Benchmark* add(const std::string& name, Meta meta,
                                           std::function<void(benchmark::State&)> fn) {
    registry().emplace_back(name, meta);
    auto* b = benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& s) { fn(s); });
    if (meta.latency)
        b->UseRealTime()->Unit(benchmark::kNanosecond);
    else
        b->UseManualTime()->Unit(benchmark::kMicrosecond);
    return b;
}

}  // namespace bench
