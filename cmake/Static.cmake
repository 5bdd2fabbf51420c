# Upload-ready binaries. RHTMX_STATIC:
#
#   AUTO  (default) ON when every archive below is installed and the build is
#         not sanitized, else OFF (with a line saying why). A plain
#         `cmake -S . -B build` therefore gives programs that can be uploaded as
#         they are, and that start faster as CGI (no shared libraries to load:
#         bench/README.md).
#   OFF   link against the system's shared libraries (distribution packages,
#         the sanitized test build)
#   ON    link libfcgi, json-c, SQLite and zlib into the programs, so a
#         host needs none of them installed: the programs depend only on the C
#         library (libc, libm, ld-linux). They need a glibc at least as new as the
#         build machine's newest symbol they use (Debian 12: 2.34);
#         tests/server/static-build.test.mjs prints it. Fails when an archive is
#         missing.
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
set(RHTMX_STATIC AUTO CACHE STRING
    "AUTO (ON when the archives are there and no sanitizer), OFF, ON (static libraries, dynamic libc) or FULL (everything static)")
set_property(CACHE RHTMX_STATIC PROPERTY STRINGS AUTO OFF ON FULL)

# RHTMX_STATIC_KIND: what AUTO became (OFF or ON), or RHTMX_STATIC as given.
set(RHTMX_STATIC_KIND "${RHTMX_STATIC}")
if(RHTMX_STATIC STREQUAL "AUTO")
  set(RHTMX_STATIC_KIND ON)
  if(RHTMX_SANITIZE)
    set(RHTMX_STATIC_KIND OFF) # the sanitizer runtimes are shared libraries
  elseif(RHTMX_POSTGRES)
    # libpq's archive would drag in OpenSSL, GSSAPI and LDAP: a PostgreSQL build links
    # the shared libraries (a host running PostgreSQL installs libpq5 anyway).
    message(STATUS "RHTMX_STATIC=AUTO: linking the shared libraries (RHTMX_POSTGRES=ON)")
    set(RHTMX_STATIC_KIND OFF)
  else()
    set(missing "")
    foreach(lib fcgi json-c sqlite3 z)
      find_library(RHTMX_ARCHIVE_${lib} NAMES lib${lib}.a)
      if(NOT RHTMX_ARCHIVE_${lib})
        list(APPEND missing lib${lib}.a)
      endif()
    endforeach()
    if(missing)
      list(JOIN missing ", " text)
      message(STATUS "RHTMX_STATIC=AUTO: linking the shared libraries (no ${text}); the "
                     "programs then need libfcgi, json-c, SQLite and zlib on the host")
      set(RHTMX_STATIC_KIND OFF)
    endif()
  endif()
endif()

if(RHTMX_STATIC_KIND AND RHTMX_POSTGRES)
  message(FATAL_ERROR "RHTMX_STATIC=${RHTMX_STATIC} and RHTMX_POSTGRES=ON do not mix (libpq links "
                      "shared): configure the PostgreSQL build with -DRHTMX_STATIC=OFF")
endif()
if(RHTMX_STATIC_KIND)
  if(RHTMX_SANITIZE)
    message(FATAL_ERROR "RHTMX_STATIC and RHTMX_SANITIZE do not mix (the sanitizer runtimes are "
                        "shared libraries): use separate build folders")
  endif()
  set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
  set(ZLIB_USE_STATIC_LIBS ON) # FindZLIB, CMake >= 3.24; the suffix covers older ones
  set(CPACK_SYSTEM_NAME "linux-${CMAKE_SYSTEM_PROCESSOR}-static")
  if(RHTMX_STATIC_KIND STREQUAL "FULL")
    string(APPEND CMAKE_EXE_LINKER_FLAGS " -static") # executables only, not the example .so
    set(CPACK_SYSTEM_NAME "linux-${CMAKE_SYSTEM_PROCESSOR}-fullstatic")
  elseif(NOT RHTMX_STATIC_KIND MATCHES "^(ON|on|On|1|YES|yes|TRUE|true)$")
    message(FATAL_ERROR "RHTMX_STATIC must be AUTO, OFF, ON or FULL (got '${RHTMX_STATIC}')")
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
    message(STATUS "RHTMX_STATIC=${RHTMX_STATIC} (${RHTMX_STATIC_KIND}): libfcgi, json-c, SQLite and zlib link "
                   "statically")
  endfunction()
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.19)
    cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL rhtmx_static_check)
  endif()
  # find_package(ZLIB) runs in the subdirectories; run it here first so its cached
  # result is the archive and the check above can see it.
  find_package(ZLIB REQUIRED)
endif()
