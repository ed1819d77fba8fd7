# Finds the C++ Actor Framework 0.17 as Debian's libcaf-dev installs it (no CMake config, no .pc).
# Provides CAF::core and CAF::io, and CAF_VERSION from caf/config.hpp.
find_path(CAF_INCLUDE_DIR NAMES caf/config.hpp)
find_library(CAF_CORE_LIBRARY NAMES caf_core)
find_library(CAF_IO_LIBRARY NAMES caf_io)

if(CAF_INCLUDE_DIR AND EXISTS "${CAF_INCLUDE_DIR}/caf/config.hpp")
    file(STRINGS "${CAF_INCLUDE_DIR}/caf/config.hpp" _caf_version_line
         REGEX "^#define CAF_VERSION [0-9]+")
    if(_caf_version_line MATCHES "CAF_VERSION ([0-9]+)")
        math(EXPR _major "${CMAKE_MATCH_1} / 10000")
        math(EXPR _minor "(${CMAKE_MATCH_1} / 100) % 100")
        math(EXPR _patch "${CMAKE_MATCH_1} % 100")
        set(CAF_VERSION "${_major}.${_minor}.${_patch}")
    endif()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CAF
    REQUIRED_VARS CAF_INCLUDE_DIR CAF_CORE_LIBRARY CAF_IO_LIBRARY
    VERSION_VAR CAF_VERSION)

if(CAF_FOUND)
    find_package(Threads REQUIRED)
    if(NOT TARGET CAF::core)
        add_library(CAF::core UNKNOWN IMPORTED)
        set_target_properties(CAF::core PROPERTIES
            IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
            INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
            INTERFACE_LINK_LIBRARIES Threads::Threads)
    endif()
    if(NOT TARGET CAF::io)
        add_library(CAF::io UNKNOWN IMPORTED)
        set_target_properties(CAF::io PROPERTIES
            IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
            INTERFACE_LINK_LIBRARIES CAF::core)
    endif()
endif()
mark_as_advanced(CAF_INCLUDE_DIR CAF_CORE_LIBRARY CAF_IO_LIBRARY)
