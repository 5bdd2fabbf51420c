# Upload-ready binaries. RHTMX_STATIC:
#
#   OFF   (default) link against the system's shared libraries
#   ON    link libfcgi, json-c, SQLite and zlib into the programs, so a
#         host needs none of them installed: the programs depend only on the C
#         library (libc, libm, ld-linux). They need a glibc at least as new as the
#         build machine's newest symbol they use (Debian 12: 2.34);
#         tests/server/static-build.test.mjs prints it.
#   FULL  the same plus the C library itself (-static): runs on any x86-64 Linux,
#         whatever its glibc (older CloudLinux/CentOS shared hosts). The linker
#         warns that dlopen/getaddrinfo/gethostbyname need the build's glibc at run
#         time: true, and harmless here (no program resolves host names), except
#         that push.resolver (a custom resolver loaded with dlopen) is unavailable.
#
#   cmake -S . -B build-static -DRHTMX_STATIC=ON -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-static && cmake --build build-static --target package
#
# Included before cmake/Dependencies.cmake: every find_library from here on (the
# pkg-config imported targets, FindZLIB, the libfcgi fallback) looks for the
# archive (.a) only. Debian ships the archives in the -dev packages (libfcgi-dev,
# libjson-c-dev, libsqlite3-dev, zlib1g-dev). Use a fresh build
# folder: find_library results are cached.
set(RHTMX_STATIC OFF CACHE STRING "OFF, ON (static libraries, dynamic libc) or FULL (everything static)")
set_property(CACHE RHTMX_STATIC PROPERTY STRINGS OFF ON FULL)

if(RHTMX_STATIC)
  if(RHTMX_SANITIZE)
    message(FATAL_ERROR "RHTMX_STATIC and RHTMX_SANITIZE do not mix (the sanitizer runtimes are "
                        "shared libraries): use separate build folders")
  endif()
  set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
  set(ZLIB_USE_STATIC_LIBS ON) # FindZLIB, CMake >= 3.24; the suffix covers older ones
  set(CPACK_SYSTEM_NAME "linux-${CMAKE_SYSTEM_PROCESSOR}-static")
  if(RHTMX_STATIC STREQUAL "FULL")
    string(APPEND CMAKE_EXE_LINKER_FLAGS " -static") # executables only, not the example .so
    set(CPACK_SYSTEM_NAME "linux-${CMAKE_SYSTEM_PROCESSOR}-fullstatic")
  elseif(NOT RHTMX_STATIC MATCHES "^(ON|on|On|1|YES|yes|TRUE|true)$")
    message(FATAL_ERROR "RHTMX_STATIC must be OFF, ON or FULL (got '${RHTMX_STATIC}')")
  endif()

  # At the end of configuration: every dependency must have resolved to an archive.
  # (pkg-config's imported targets silently fall back to "-lname", a shared
  # library, when the archive is missing.)
  function(rhtmx_static_check)
    set(bad "")
    foreach(t PkgConfig::SQLITE3 PkgConfig::JSONC PkgConfig::FCGI rhtmx_fcgi)
      if(TARGET ${t})
        get_target_property(libs ${t} INTERFACE_LINK_LIBRARIES)
        get_target_property(loc ${t} IMPORTED_LOCATION)
        foreach(l IN LISTS libs loc)
          if(l AND NOT l MATCHES "\\.a$" AND NOT l MATCHES "NOTFOUND$")
            list(APPEND bad "${t}: ${l}")
          endif()
        endforeach()
      endif()
    endforeach()
    if(ZLIB_LIBRARY AND NOT ZLIB_LIBRARY MATCHES "\\.a$")
      list(APPEND bad "zlib: ${ZLIB_LIBRARY}")
    endif()
    if(bad)
      list(JOIN bad "\n  " text)
      message(FATAL_ERROR "RHTMX_STATIC: these did not resolve to static archives (install the "
                          "-dev packages that ship the .a files, and configure a fresh build "
                          "folder):\n  ${text}")
    endif()
    message(STATUS "RHTMX_STATIC=${RHTMX_STATIC}: libfcgi, json-c, SQLite and zlib link "
                   "statically")
  endfunction()
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.19)
    cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL rhtmx_static_check)
  endif()
  # find_package(ZLIB) runs in the subdirectories; run it here first so its cached
  # result is the archive and the check above can see it.
  find_package(ZLIB REQUIRED)
endif()
