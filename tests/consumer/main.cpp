// tests/consumer/main.cpp - a program that uses an installed libipc, as any
// user would: only <ipc/...> headers and the library. Sends one message
// through an anonymous channel and reads it back; prints "ok".
#include <ipc/channel.hpp>

#include <cstdio>

int main() {
    auto ch = ipc::Channel::create_anonymous({.kind = ipc::ChannelKind::spsc, .capacity = 4});
    if (ch.send(ipc::Message::make(7, {42, 43})) != ipc::Status::ok) {
        std::fprintf(stderr, "consumer: send failed\n");
        return 1;
    }
    ipc::Message m;
    if (ch.recv(m) != ipc::Status::ok || m.label() != 7 || m.words() != 2 || m.mr[0] != 42 || m.mr[1] != 43) {
        std::fprintf(stderr, "consumer: recv failed or got the wrong message\n");
        return 1;
    }
    std::puts("ok");
    return 0;
}
