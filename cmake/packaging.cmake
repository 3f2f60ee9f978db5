# cmake/packaging.cmake - what `cmake --install` and `cpack -G DEB` ship beyond
# the targets' own install rules (included at the end of the top-level
# CMakeLists.txt):
#
#   bin/ipcd, bin/ipcctl                 (daemon/, tools/)
#   lib/libipc.so*  -> ipc::ipc          shared
#   lib/libipc.a    -> ipc::ipc_static   static
#   include/ipc/, lib/cmake/ipc/         (top level: headers, package, version file)
#   lib/pkgconfig/ipc.pc                 relocatable (${pcfiledir})
#   lib/systemd/system/                  systemd/*.service, *.socket if present
#   share/man/man1,7,8/                  ipcctl.1, libipc.7, ipcd.8
#   share/bash-completion/completions/ipcctl
#   share/doc/ipc/                       README.md, docs/*.md
#
# In-tree users and the tests link `ipc` exactly as before (static unless
# BUILD_SHARED_LIBS); the other kind is built from the same sources for the
# install only. Whichever is which, the installed package names the shared one
# ipc::ipc and the static one ipc::ipc_static.

# --- libipc, the other kind ----------------------------------------------------
get_target_property(_ipc_type ipc TYPE)
get_target_property(_ipc_sources ipc SOURCES)
if(_ipc_type STREQUAL "STATIC_LIBRARY")
  set(_ipc_other ipc_shared)
  add_library(ipc_shared SHARED ${_ipc_sources})
  set_target_properties(ipc PROPERTIES EXPORT_NAME ipc_static)
  set_target_properties(ipc_shared PROPERTIES EXPORT_NAME ipc VERSION ${PROJECT_VERSION}
                                              SOVERSION ${PROJECT_VERSION_MAJOR})
else()
  set(_ipc_other ipc_static)
  add_library(ipc_static STATIC ${_ipc_sources})
  set_target_properties(ipc_static PROPERTIES EXPORT_NAME ipc_static)
endif()
target_include_directories(${_ipc_other}
  PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
  PRIVATE ${PROJECT_SOURCE_DIR}/libipc)
target_compile_features(${_ipc_other} PUBLIC cxx_std_20)
# Boost is header-only here: nothing of it reaches the package's users.
target_link_libraries(${_ipc_other} PRIVATE $<BUILD_INTERFACE:Boost::headers> $<BUILD_INTERFACE:ipc_build_flags>
                      PUBLIC Threads::Threads)
set_target_properties(${_ipc_other} PROPERTIES OUTPUT_NAME ipc POSITION_INDEPENDENT_CODE ON)
install(TARGETS ${_ipc_other} EXPORT ipcTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# --- pkg-config ----------------------------------------------------------------
# Relocatable: prefix is found from where ipc.pc lies, so `cmake --install
# --prefix DIR` and the .deb (prefix /usr) both get a correct file.
set(_pc_dir "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig")
file(RELATIVE_PATH _pc_up "${_pc_dir}" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" _pc_up "${_pc_up}")
set(IPC_PC_PREFIX "\${pcfiledir}/${_pc_up}")
foreach(_d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_d}}")
    set(IPC_PC_${_d} "${CMAKE_INSTALL_${_d}}")
  else()
    set(IPC_PC_${_d} "\${prefix}/${CMAKE_INSTALL_${_d}}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/ipc.pc.in ${PROJECT_BINARY_DIR}/ipc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ipc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# --- systemd units, man pages, bash completion -----------------------------------
if(EXISTS ${PROJECT_SOURCE_DIR}/systemd)
  file(GLOB _ipc_units CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/systemd/*.service ${PROJECT_SOURCE_DIR}/systemd/*.socket)
  if(_ipc_units)
    install(FILES ${_ipc_units} DESTINATION lib/systemd/system OPTIONAL)
  endif()
endif()
# The sample configuration (every key commented out, so it changes nothing)
# goes to /etc/ipcd/ipcd.conf when the prefix is /usr (the .deb, where it is
# a conffile: dpkg keeps an admin's edits across upgrades), else to
# PREFIX/etc/ipcd/ipcd.conf. Decided at install time, since cpack and
# `cmake --install --prefix` choose the prefix after configuring.
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(_ipc_etc /etc/ipcd)
  else()
    set(_ipc_etc \"\${CMAKE_INSTALL_PREFIX}/etc/ipcd\")
  endif()
  file(INSTALL \"${PROJECT_SOURCE_DIR}/etc/ipcd.conf\" DESTINATION \"\${_ipc_etc}\")
")
install(FILES ${PROJECT_SOURCE_DIR}/docs/libipc.7 DESTINATION ${CMAKE_INSTALL_MANDIR}/man7 OPTIONAL)
install(FILES ${PROJECT_SOURCE_DIR}/docs/ipcd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 OPTIONAL)
# share/doc/ipc: README and docs/*.md (the units' Documentation= points here).
file(GLOB _ipc_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${_ipc_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/tools/ipcctl.bash-completion
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME ipcctl OPTIONAL)

# --- CPack: one .deb with everything ----------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ipc)
set(CPACK_PACKAGE_VENDOR "ipc project")
set(IPC_PACKAGE_MAINTAINER "ipc maintainers <maintainers@example.org>" CACHE STRING "Maintainer field of the .deb")
set(CPACK_PACKAGE_CONTACT "${IPC_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${IPC_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
file(WRITE ${PROJECT_BINARY_DIR}/debian/conffiles "/etc/ipcd/ipcd.conf\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "libipc (shared-memory channels, headers, static and shared library, CMake and\n pkg-config files), ipcd (the semaphore daemon) and ipcctl (its command-line tool).")
find_program(IPC_DPKG_SHLIBDEPS dpkg-shlibdeps)
mark_as_advanced(IPC_DPKG_SHLIBDEPS)
if(IPC_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "liburing2, libsystemd0")
endif()
include(CPack)
