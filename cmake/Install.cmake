# What a person uploads: `cmake --install BUILD --prefix DIR` lays it out, and
# `cpack` (or `cmake --build BUILD --target package`) packs the same tree into
# rhtmx-sync-VERSION-SYSTEM.tar.gz, whose top folder is that name.
#
#   cgi-bin/sync-pull sync-push sync-events client-js   the four programs (0755)
#   cgi-bin/.htaccess                                   apache/.htaccess
#   cgi-bin/rhtmx-sync.json.example                     a config to copy and edit
#   bin/rhtmx-sync                                      the operator tool (not for the web root)
#   share/man/man1/rhtmx-sync.1                         its manual
#   share/doc/rhtmx-sync/                               README, DEPLOY, SECURITY, PROTOCOL,
#                                                       apache/fcgid.conf, lighttpd/rhtmx-sync.conf
#   share/doc/rhtmx-sync/nginx/                         nginx/rhtmx-sync.conf, rhtmx-sync-fcgi.sh
#
# On a host, cgi-bin/ becomes public_html/api/sync/ (docs/DEPLOY.md). Build with
# -DRHTMX_STATIC=ON (cmake/Static.cmake) for binaries that need only the C library.
set(RHTMX_PROGRAMS sync-pull sync-push sync-events client-js)

install(TARGETS ${RHTMX_PROGRAMS} RUNTIME DESTINATION cgi-bin COMPONENT programs)
install(FILES ${PROJECT_SOURCE_DIR}/apache/.htaccess DESTINATION cgi-bin COMPONENT programs)
install(FILES ${PROJECT_SOURCE_DIR}/apache/rhtmx-sync.json.example DESTINATION cgi-bin
        COMPONENT programs)
install(TARGETS rhtmx-sync RUNTIME DESTINATION bin COMPONENT programs)
install(FILES ${PROJECT_SOURCE_DIR}/docs/rhtmx-sync.1 DESTINATION share/man/man1 COMPONENT programs)

set(RHTMX_DOCS README.md)
foreach(doc DEPLOY SECURITY PROTOCOL PUSH EVENTS CLIENT)
  if(EXISTS ${PROJECT_SOURCE_DIR}/docs/${doc}.md)
    list(APPEND RHTMX_DOCS docs/${doc}.md)
  endif()
endforeach()
list(APPEND RHTMX_DOCS apache/fcgid.conf lighttpd/rhtmx-sync.conf)
foreach(doc ${RHTMX_DOCS})
  install(FILES ${PROJECT_SOURCE_DIR}/${doc} DESTINATION share/doc/rhtmx-sync COMPONENT programs)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/nginx/rhtmx-sync.conf DESTINATION share/doc/rhtmx-sync/nginx
        COMPONENT programs)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/nginx/rhtmx-sync-fcgi.sh
        DESTINATION share/doc/rhtmx-sync/nginx COMPONENT programs)

# The tarball. Binaries are stripped on the way in (cmake --install --strip does
# the same for an install tree): an upload should be small, and a crash report
# from a host is read against the build folder's unstripped copy anyway.
set(CPACK_GENERATOR TGZ)
set(CPACK_PACKAGE_NAME rhtmx-sync)
set(CPACK_PACKAGE_VENDOR "rhtmx-sync")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Offline-first sync for PHP/htmx apps as C CGI/FastCGI programs")
if(NOT CPACK_SYSTEM_NAME)
  set(CPACK_SYSTEM_NAME "linux-${CMAKE_SYSTEM_PROCESSOR}")
endif()
set(CPACK_STRIP_FILES ON)
set(CPACK_SOURCE_GENERATOR "")
set(CPACK_COMPONENTS_ALL programs)
include(CPack)
