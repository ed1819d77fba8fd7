// The CAF actor system every role runs in. Kept behind this header so that only actors/
// translation units include CAF (compile time), and callers see plain C++.
#pragma once

#include <string>

namespace cachalot::actors {

/// Version of the linked C++ Actor Framework, e.g. "0.17.6".
std::string caf_version();

} // namespace cachalot::actors
