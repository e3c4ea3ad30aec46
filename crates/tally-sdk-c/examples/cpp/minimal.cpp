// A complete minimal use of the Tally SDK from C++ (tally.hpp): configure, authorize, record
// usage, send it, show the status; a failure is a tally::Error with its stable code.
//
// usage: minimal SERVER_URL VENDOR_PUBLIC_KEY STATE_DIR ORGANIZATION PRODUCT [SCANS]
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <iostream>

#include "tally.hpp"

int main(int argc, char **argv) {
    if (argc < 6) {
        std::cerr << "usage: " << argv[0]
                  << " SERVER_URL VENDOR_PUBLIC_KEY STATE_DIR ORGANIZATION PRODUCT [SCANS]\n";
        return 2;
    }
    const std::uint64_t scans = argc > 6 ? std::strtoull(argv[6], nullptr, 10) : 1;
    try {
        tally::Client client;
        client.add_server(argv[1]).vendor_public_key(argv[2]).state_dir(argv[3]);
        client.organization(argv[4]).product(argv[5]);
        client.start();

        const tally::Status granted = client.authorize();
        const std::time_t until = static_cast<std::time_t>(granted.expires_at);
        std::cout << "authorized"
                  << (granted.cached ? " from the grant held on this device (no server answered)" : "")
                  << " until " << std::put_time(std::gmtime(&until), "%Y-%m-%d %H:%M:%S UTC") << "\n";

        client.record_usage("scan", scans);
        const tally::FlushResult sent = client.flush();
        std::cout << "usage sent: " << sent.acknowledged << " reports acknowledged, " << sent.pending
                  << " pending\n";

        const tally::Status now = client.status();
        std::cout << "status: " << (now.authorized ? "authorized" : tally_error_name(now.reason)) << "\n";
        return 0;
    } catch (const tally::Error &e) {
        std::cerr << "failed: " << e.code() << " " << e.name() << ": " << e.what() << "\n";
        return 1;
    }
}
