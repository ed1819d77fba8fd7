// CAF system set-up; see actor_runtime.h.
#include "actors/actor_runtime.h"

#include <caf/config.hpp>

namespace cachalot::actors {

std::string caf_version() {
    return std::to_string(CAF_VERSION / 10000) + "." + std::to_string((CAF_VERSION / 100) % 100) + "." +
           std::to_string(CAF_VERSION % 100);
}

} // namespace cachalot::actors
