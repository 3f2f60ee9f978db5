// tests/channel_peer.cpp - a separately started peer for the multi-process
// channel tests (channel_process_test, channel_stress_test exec it).
//
//   channel_peer ROLE (fd=N | name=NAME) [key=value...]
//
//   produce     id=I count=C [batch=B]          send make_msg(I, 0..C-1), then exit
//   consume     producers=P count=C tally=FD [batch=B]
//                                               receive until closed, checking order,
//                                               counting into the tally memfd FD
//   recv-block                                  recv() until it returns (expects closed)
//   send-block                                  fill the ring, then send() (expects closed)
//   stream      id=I                            send() make_msg(I, 0, 1, ...) until closed
//
// Common keys: spin=NS (set_spin), timeout_ms=T (bound of each blocking call
// of produce/consume, default 10000). The exit code is one of test::exit_* (channel_test_util.hpp).
#include <cstdlib>
#include <map>
#include <string>

#include "channel_test_util.hpp"

namespace {

using namespace ipc;
using namespace ipc::test;

int run(int argc, char** argv) {
    if (argc < 3) return report(exit_usage, "usage: channel_peer ROLE (fd=N | name=NAME) [key=value...]");
    const std::string role = argv[1];
    std::map<std::string, std::string> kv;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        const auto eq = a.find('=');
        if (eq == std::string::npos) return report(exit_usage, "bad argument '%s'", a.c_str());
        kv[a.substr(0, eq)] = a.substr(eq + 1);
    }
    auto num = [&](const char* key, long long def) -> long long {
        auto it = kv.find(key);
        return it == kv.end() ? def : std::stoll(it->second);
    };

    Channel ch = kv.count("fd") ? Channel::from_fd(static_cast<int>(num("fd", -1))) : Channel::open(kv.at("name"));
    if (kv.count("spin")) ch.set_spin(std::chrono::nanoseconds(num("spin", 0)));
    const auto timeout = std::chrono::milliseconds(num("timeout_ms", 10000));

    if (role == "produce") {
        return produce(ch, {.id = static_cast<std::uint32_t>(num("id", 0)),
                            .count = static_cast<std::uint64_t>(num("count", 0)),
                            .batch = static_cast<std::size_t>(num("batch", 1)),
                            .call_timeout = timeout});
    }
    if (role == "consume") {
        const auto producers = static_cast<std::uint32_t>(num("producers", 1));
        const auto count = static_cast<std::uint64_t>(num("count", 0));
        Tally tally = Tally::attach(static_cast<int>(num("tally", -1)), producers, count);
        return consume(ch,
                       {.producers = producers,
                        .per_producer = count,
                        .batch = static_cast<std::size_t>(num("batch", 1)),
                        .call_timeout = timeout},
                       tally);
    }
    if (role == "recv-block") {
        Message m;
        const Status s = ch.recv(m);
        return s == Status::closed ? exit_ok : status_exit(s, "recv-block: recv");
    }
    if (role == "send-block") {
        const Message m = make_msg(0, 0);
        Status s;
        while ((s = ch.try_send(m)) == Status::ok) {
        }
        if (s != Status::would_block) return status_exit(s, "send-block: try_send");
        s = ch.send(m);
        return s == Status::closed ? exit_ok : status_exit(s, "send-block: send");
    }
    if (role == "stream") {
        const auto id = static_cast<std::uint32_t>(num("id", 0));
        for (std::uint64_t seq = 0;; ++seq) {
            const Status s = ch.send(make_msg(id, seq));
            if (s == Status::closed) return exit_ok;
            if (s != Status::ok) return status_exit(s, "stream: send");
        }
    }
    return report(exit_usage, "unknown role '%s'", role.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        return report(exit_exception, "channel_peer: %s", e.what());
    }
}
