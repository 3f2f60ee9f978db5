# ipcctl: its pure parts alone (unit), then the real binary against a real
# ipcd (integration); the integration test runs the built binaries by path.
find_package(nlohmann_json 3 REQUIRED)

ipc_add_test(ipcctl_unit_test SOURCES ipcctl_unit_test.cpp LABELS unit LIBS ipcctl_core)

if(TARGET ipcd)
  ipc_add_test(ipcctl_test SOURCES ipcctl_test.cpp LABELS integration LIBS nlohmann_json::nlohmann_json TIMEOUT 120)
  target_compile_definitions(ipcctl_test PRIVATE IPCCTL_PATH="$<TARGET_FILE:ipcctl>" IPCD_PATH="$<TARGET_FILE:ipcd>")
  add_dependencies(ipcctl_test ipcctl ipcd)
else()
  message(STATUS "ipcctl_test not built: there is no ipcd target")
endif()

# ipcctl channels / channel stat / channel rm and ipc/inspect.hpp, against real
# named channels and hostile files in /dev/shm (no daemon needed).
ipc_add_test(ipcctl_channels_test SOURCES ipcctl_channels_test.cpp LABELS integration
             LIBS nlohmann_json::nlohmann_json TIMEOUT 120)
target_compile_definitions(ipcctl_channels_test PRIVATE IPCCTL_PATH="$<TARGET_FILE:ipcctl>"
                           IPCCTL_COMPLETION="${PROJECT_SOURCE_DIR}/tools/ipcctl.bash-completion")
add_dependencies(ipcctl_channels_test ipcctl)
