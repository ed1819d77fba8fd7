// The shared tiny V4 fixture, loaded once per test process: the model is const after loading
// and every test keeps its own sequence states, so one instance serves them all.
#pragma once

#include "engine/model.h"

namespace cachalot::test {

/// tiny_model_dir() loaded (the test fails with the loader's message if it cannot be).
const model& tiny_model();

} // namespace cachalot::test
