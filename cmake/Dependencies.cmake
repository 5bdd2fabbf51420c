# Dependencies as imported targets: rhtmx::sqlite3, rhtmx::jsonc, rhtmx::fcgi.
# pkg-config first; a library that ships no .pc (libfcgi on some distributions) gets a
# small imported target built from find_path/find_library.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3>=3.35)
pkg_check_modules(JSONC REQUIRED IMPORTED_TARGET json-c>=0.15)
add_library(rhtmx::sqlite3 ALIAS PkgConfig::SQLITE3)
add_library(rhtmx::jsonc ALIAS PkgConfig::JSONC)
pkg_check_modules(FCGI QUIET IMPORTED_TARGET fcgi)
if(FCGI_FOUND)
  add_library(rhtmx::fcgi ALIAS PkgConfig::FCGI)
else()
  find_path(FCGI_INCLUDE_DIR fcgiapp.h REQUIRED)
  find_library(FCGI_LIBRARY NAMES fcgi REQUIRED)
  add_library(rhtmx_fcgi UNKNOWN IMPORTED)
  set_target_properties(rhtmx_fcgi PROPERTIES
    IMPORTED_LOCATION "${FCGI_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${FCGI_INCLUDE_DIR}")
  add_library(rhtmx::fcgi ALIAS rhtmx_fcgi)
endif()
