// Placeholder translation unit until the HTTP server lands.
namespace cachalot::gateway {
int server_info_placeholder() { return 0; }
}
