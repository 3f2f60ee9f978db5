# Tests of the shared-memory channel (include/ipc/channel.hpp).
#
#   channel_setup_test       unit         naming, create/open/remove, memfd, segment validation
#   channel_semantics_test   unit         Go-channel semantics of both ring kinds in one thread
#   channel_corruption_test  unit         scribbled indices and turns give Status::corrupted
#   channel_thread_test      thread       several threads, both kinds (run this one under TSan)

ipc_add_test(channel_setup_test SOURCES channel_setup_test.cpp LABELS unit TIMEOUT 30)
ipc_add_test(channel_semantics_test SOURCES channel_semantics_test.cpp LABELS unit TIMEOUT 30)
ipc_add_test(channel_corruption_test SOURCES channel_corruption_test.cpp LABELS unit TIMEOUT 30)
ipc_add_test(channel_thread_test SOURCES channel_thread_test.cpp LABELS thread TIMEOUT 60)
