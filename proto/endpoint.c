/*  proto/endpoint.c — dialable endpoint strings and host-local endpoint files.
 *  Pure: no I/O. Every length is checked before a byte is read.
 */
#include "endpoint.h"

#include "selftest.h"
#include <stdio.h>
#include <string.h>

static bool
s_host_ok(const char *h, size_t len)
{
    if (len == 0 || len > 253) {
        return false;
    }
    if ((len == 7 && memcmp(h, "0.0.0.0", 7) == 0) || (len == 1 && h[0] == '*')) {
        return false; // wildcards name every interface, not a place to dial
    }
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '-' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return h[0] != '-' && h[0] != '.';
}

uint16_t
endpoint_port(const char *str, size_t len)
{
    static const char prefix[] = "tcp://";
    size_t plen = sizeof prefix - 1;
    if (len > PARLEY_ENDPOINT_MAX || len <= plen || memcmp(str, prefix, plen) != 0) {
        return 0;
    }
    const char *colon = NULL;
    for (size_t i = plen; i < len; i++) {
        if (str[i] == ':') {
            colon = str + i; // the last colon separates the port
        }
    }
    if (!colon || !s_host_ok(str + plen, (size_t)(colon - str) - plen)) {
        return 0;
    }
    size_t digits = len - (size_t)(colon - str) - 1;
    if (digits == 0 || digits > 5 || colon[1] == '0') {
        return 0;
    }
    uint32_t port = 0;
    for (size_t i = 1; i <= digits; i++) {
        if (colon[i] < '0' || colon[i] > '9') {
            return 0;
        }
        port = port * 10 + (uint32_t)(colon[i] - '0');
    }
    return port > 65535 ? 0 : (uint16_t)port;
}

bool
endpoint_valid(const char *str, size_t len)
{
    return endpoint_port(str, len) != 0;
}

int
endpoint_file_encode(const char *endpoint, long pid, char *out, size_t cap, size_t *out_len)
{
    if (!endpoint_valid(endpoint, strlen(endpoint)) || pid <= 0 || pid > 2147483647L) {
        return PARLEY_ERR_MALFORMED;
    }
    int n = snprintf(out, cap, "%s\n%ld\n", endpoint, pid);
    if (n < 0 || (size_t)n >= cap) {
        return PARLEY_ERR_LIMIT;
    }
    *out_len = (size_t)n;
    return PARLEY_OK;
}

int
endpoint_file_decode(const uint8_t *buf, size_t len, char *endpoint, size_t cap, long *pid)
{
    if (len > ENDPOINT_FILE_MAX) {
        return PARLEY_ERR_MALFORMED;
    }
    const char *s = (const char *)buf;
    const char *nl = memchr(s, '\n', len);
    if (!nl) {
        return PARLEY_ERR_MALFORMED;
    }
    size_t ep_len = (size_t)(nl - s);
    if (!endpoint_valid(s, ep_len) || ep_len >= cap) {
        return PARLEY_ERR_MALFORMED;
    }
    const char *p = nl + 1;
    size_t rest = len - ep_len - 1;
    long v = 0;
    size_t i = 0;
    for (; i < rest && p[i] != '\n'; i++) {
        if (p[i] < '0' || p[i] > '9' || i >= 10) {
            return PARLEY_ERR_MALFORMED;
        }
        v = v * 10 + (p[i] - '0');
    }
    //  Exactly one newline must end the PID, and nothing may follow it.
    if (i == 0 || i + 1 != rest || p[i] != '\n' || p[0] == '0' || v <= 0 || v > 2147483647L) {
        return PARLEY_ERR_MALFORMED;
    }
    memcpy(endpoint, s, ep_len);
    endpoint[ep_len] = '\0';
    *pid = v;
    return PARLEY_OK;
}

void
endpoint_test(bool verbose)
{
    (void)verbose;
    static const char *good[] = { "tcp://127.0.0.1:1", "tcp://host-a.example:65535",
                                  "tcp://10.254.0.3:7400" };
    static const char *bad[] = { "",           "tcp://",         "tcp://:1",
                                 "tcp://h:",   "tcp://h:0",      "tcp://h:65536",
                                 "tcp://h:01", "udp://h:1",      "tcp://0.0.0.0:5",
                                 "tcp://*:5",  "tcp://h h:5",    "tcp://-h:5",
                                 "tcp://h:5x", "tcp://h:123456", "ipc:///tmp/x" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK(endpoint_valid(good[i], strlen(good[i])));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(!endpoint_valid(bad[i], strlen(bad[i])));
    }
    CHECK(endpoint_port("tcp://127.0.0.1:7400", 20) == 7400);
    char file[ENDPOINT_FILE_MAX], ep[PARLEY_ENDPOINT_MAX + 1];
    size_t len = 0;
    long pid = 0;
    CHECK(endpoint_file_encode("tcp://127.0.0.1:9", 42, file, sizeof file, &len) == PARLEY_OK);
    CHECK(endpoint_file_decode((const uint8_t *)file, len, ep, sizeof ep, &pid) == PARLEY_OK);
    CHECK(strcmp(ep, "tcp://127.0.0.1:9") == 0 && pid == 42);
    CHECK(endpoint_file_encode("tcp://0.0.0.0:9", 42, file, sizeof file, &len) != PARLEY_OK);
    CHECK(endpoint_file_encode("tcp://h:9", 0, file, sizeof file, &len) != PARLEY_OK);
    //  Every truncation and every flipped byte: an error or a still-valid file.
    CHECK(endpoint_file_encode("tcp://127.0.0.1:9", 42, file, sizeof file, &len) == PARLEY_OK);
    for (size_t cut = 0; cut < len; cut++) {
        CHECK(endpoint_file_decode((const uint8_t *)file, cut, ep, sizeof ep, &pid) != PARLEY_OK);
    }
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char copy[ENDPOINT_FILE_MAX];
            memcpy(copy, file, len);
            copy[i] ^= (char)(1 << bit);
            if (endpoint_file_decode((const uint8_t *)copy, len, ep, sizeof ep, &pid)
                == PARLEY_OK) {
                CHECK(endpoint_valid(ep, strlen(ep)) && pid > 0);
            }
        }
    }
    const char *trailing = "tcp://127.0.0.1:9\n42\nextra";
    CHECK(endpoint_file_decode((const uint8_t *)trailing, strlen(trailing), ep, sizeof ep, &pid)
          != PARLEY_OK);
}
