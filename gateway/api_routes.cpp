// The service routes (see api_routes.h). Every answer is JSON except /metrics, which is the
// Prometheus text format; a model id that is not served gets OpenAI's 404 naming it.
#include "gateway/api_routes.h"

#include "gateway/metrics.h"

namespace cachalot::gateway {

std::string model_object_json(const model_state& model) {
    return "{\"id\":\"" + json_escape(model.info.id) + "\",\"object\":\"model\",\"created\":" +
           std::to_string(model.created_unix) + ",\"owned_by\":\"cachalot\",\"max_model_len\":" +
           std::to_string(model.info.max_model_len) + "}";
}

void add_service_routes(router& routes, std::shared_ptr<const model_state> model,
                        std::shared_ptr<gateway_metrics> metrics) {
    const route_options open{.requires_auth = false};

    routes.add(
        "GET", "/health",
        [](const http_request&, std::shared_ptr<response_writer> w) { w->respond(json_response(200, R"({"status":"ok"})")); },
        open);

    routes.add(
        "GET", "/ready",
        [model](const http_request&, std::shared_ptr<response_writer> w) {
            if (model->ready.load()) {
                w->respond(json_response(200, R"({"status":"ready"})"));
            } else {
                w->respond(error_response(503, "the model " + model->info.id + " is still loading",
                                          "service_unavailable_error", {}, "model_not_ready"));
            }
        },
        open);

    routes.add("GET", "/v1/models", [model](const http_request&, std::shared_ptr<response_writer> w) {
        w->respond(json_response(200, "{\"object\":\"list\",\"data\":[" + model_object_json(*model) + "]}"));
    });

    routes.add("GET", "/v1/models/{id}", [model](const http_request& req, std::shared_ptr<response_writer> w) {
        const auto id = req.param("id");
        if (id == model->info.id) {
            w->respond(json_response(200, model_object_json(*model)));
        } else {
            w->respond(error_response(404, "The model `" + std::string(id) + "` does not exist", "invalid_request_error",
                                      "model", "model_not_found"));
        }
    });

    routes.add(
        "GET", "/metrics",
        [metrics](const http_request&, std::shared_ptr<response_writer> w) {
            http_response r;
            r.content_type = "text/plain; version=0.0.4; charset=utf-8";
            r.body = metrics ? metrics->serialize() : std::string();
            w->respond(std::move(r));
        },
        open);
}

} // namespace cachalot::gateway
