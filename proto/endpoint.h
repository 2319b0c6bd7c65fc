/*  proto/endpoint.h — endpoint strings and host-local endpoint files.
 *
 *  An endpoint Parley dials is "tcp://HOST:PORT": HOST a dotted IPv4
 *  address or a DNS name (letters, digits, '-', '.'), PORT 1..65535, at most
 *  PARLEY_ENDPOINT_MAX bytes. Wildcards (0.0.0.0, *) are not dialable.
 *
 *  A host-local endpoint file (discovery/local.c) is named after the node id
 *  and holds exactly two lines:
 *
 *      tcp://127.0.0.1:PORT\n
 *      PID\n                    decimal, 1..2^31-1, the owning parleyd
 *
 *  Anything else — more lines, a bad endpoint, a PID out of range, a file
 *  longer than ENDPOINT_FILE_MAX — is PARLEY_ERR_MALFORMED.
 */
#ifndef PARLEY_PROTO_ENDPOINT_H
#define PARLEY_PROTO_ENDPOINT_H

#include "errors.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENDPOINT_FILE_MAX 300u

/*  True if str[0..len) is a dialable tcp endpoint as described above. */
bool endpoint_valid(const char *str, size_t len);
/*  The port of a valid endpoint, 0 if invalid. */
uint16_t endpoint_port(const char *str, size_t len);

int endpoint_file_encode(const char *endpoint, long pid, char *out, size_t cap,
                         size_t *out_len) PARLEY_WUR;
/*  Parses a file's bytes; endpoint gets a NUL-terminated copy (cap >=
 *  PARLEY_ENDPOINT_MAX + 1). */
int endpoint_file_decode(const uint8_t *buf, size_t len, char *endpoint, size_t cap,
                         long *pid) PARLEY_WUR;

void endpoint_test(bool verbose);

#endif
