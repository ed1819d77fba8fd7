#include "tests/support/tiny_model.h"

#include <doctest/doctest.h>

#include <memory>

#include "tests/support/test_paths.h"

namespace cachalot::test {

const model& tiny_model() {
    static std::unique_ptr<model> m = [] {
        auto r = model::load(tiny_model_dir());
        REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.err().message));
        return std::move(*r);
    }();
    return *m;
}

} // namespace cachalot::test
