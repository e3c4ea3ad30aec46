/*
 * A header-only C++17 wrapper of the Tally C SDK (tally.h): a client that frees its handle
 * when it goes out of scope (RAII, movable, not copyable), setters that chain, and failures
 * thrown as tally::Error with their stable code (docs/error-codes.md) and message.
 *
 * Like the handle it owns, a tally::Client may be used from several threads at once; each
 * thread's failure is read right after its own call, so threads never see each other's errors.
 */
#ifndef TALLY_HPP
#define TALLY_HPP

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "tally.h"

namespace tally {

/* A failed call: its stable code, the code's name and the message. */
class Error : public std::runtime_error {
public:
    Error(std::int32_t code, const std::string &message)
        : std::runtime_error(message), code_(code) {}

    std::int32_t code() const noexcept { return code_; }
    const char *name() const noexcept { return tally_error_name(code_); }

private:
    std::int32_t code_;
};

using Status = TallyStatus;
using FlushResult = TallyFlushResult;

/* A Tally client for one product on one device. */
class Client {
public:
    Client() : handle_(tally_new()) {
        if (handle_ == nullptr) throw std::bad_alloc();
    }
    ~Client() { tally_free(handle_); }

    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    Client(Client &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Client &operator=(Client &&other) noexcept {
        if (this != &other) {
            tally_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }

    /* Configuration (see tally.h); only until the client starts. */
    Client &add_server(const std::string &url) { return set(tally_add_server(handle_, url.c_str())); }
    Client &vendor_public_key(const std::string &key) {
        return set(tally_set_vendor_public_key(handle_, key.c_str()));
    }
    Client &state_dir(const std::string &dir) { return set(tally_set_state_dir(handle_, dir.c_str())); }
    Client &organization(const std::string &id) { return set(tally_set_organization(handle_, id.c_str())); }
    Client &handshake_code(const std::string &code) {
        return set(tally_set_handshake_code(handle_, code.c_str()));
    }
    Client &session_password(const std::string &password) {
        return set(tally_set_session_password(handle_, password.c_str()));
    }
    Client &product(const std::string &name) { return set(tally_set_product(handle_, name.c_str())); }
    Client &version(std::uint32_t major) { return set(tally_set_version(handle_, major)); }
    Client &add_module(const std::string &module) { return set(tally_add_module(handle_, module.c_str())); }
    Client &friendly_name(const std::string &name) {
        return set(tally_set_friendly_name(handle_, name.c_str()));
    }
    Client &device_id_mode(std::uint32_t mode) { return set(tally_set_device_id_mode(handle_, mode)); }

    /* Checks the configuration and opens the state directory (optional: the calls below do it). */
    void start() { check(tally_start(handle_)); }

    /* Asks the servers for a grant; `cached` says the device's own grant was used. */
    Status authorize() {
        Status status{};
        check(tally_authorize(handle_, &status));
        return status;
    }

    /* Counts `count` uses of `feature` in the current 3-minute slice, on disk. */
    void record_usage(const std::string &feature, std::uint64_t count = 1) {
        check(tally_record_usage(handle_, feature.c_str(), count));
    }

    /* Sends the recorded usage now. */
    FlushResult flush() {
        FlushResult sent{};
        check(tally_flush(handle_, &sent));
        return sent;
    }

    /* Whether the product may run now, from the device alone. */
    Status status() {
        Status status{};
        check(tally_status(handle_, &status));
        return status;
    }

    /* Renews the grant and sends usage in a background thread until the client is destroyed. */
    void start_background(std::uint32_t report_every_seconds = 0) {
        check(tally_start_background(handle_, report_every_seconds));
    }

    /* The C handle, for calls this wrapper does not cover. */
    TallyClient *handle() const noexcept { return handle_; }

private:
    Client &set(std::int32_t code) {
        check(code);
        return *this;
    }

    void check(std::int32_t code) const {
        if (code == TALLY_OK) return;
        std::string message;
        if (char *text = tally_last_error_message(handle_)) {
            message = text;
            tally_string_free(text);
        }
        throw Error(code, message);
    }

    TallyClient *handle_;
};

/* Checks the protocol test vectors (docs/sdk/test-vectors.json); returns the cases checked. */
inline std::uint32_t check_test_vectors(const std::string &json) {
    std::uint32_t cases = 0;
    char *text = nullptr;
    std::int32_t code = tally_check_test_vectors(json.c_str(), &cases, &text);
    if (code == TALLY_OK) return cases;
    std::string message = text != nullptr ? text : "";
    tally_string_free(text);
    throw Error(code, message);
}

}  // namespace tally

#endif  // TALLY_HPP
