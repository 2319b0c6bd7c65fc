/*  node/api_req.h — parsing and answering JSON-RPC 2.0 lines (Jansson).
 *
 *  The local API speaks JSON-RPC 2.0, one object per line. This module is the
 *  pure part: it turns one request line into a checked api_req_t and builds
 *  response objects; it does no I/O, so it has a fuzz target. Errors use the
 *  JSON-RPC codes (-32700 parse, -32600 invalid request, -32601 no method,
 *  -32602 bad params) and, for Parley failures, -32000 + the PARLEY_ERR_*
 *  code (so -32006 is "not found"), with data.error naming the code.
 */
#ifndef PARLEY_NODE_API_REQ_H
#define PARLEY_NODE_API_REQ_H

#include "../proto/errors.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_ERR_PARSE (-32700)
#define API_ERR_INVALID (-32600)
#define API_ERR_METHOD (-32601)
#define API_ERR_PARAMS (-32602)
#define API_ERR_INTERNAL (-32603)
#define API_ERR_BASE (-32000)
#define API_METHOD_MAX 64u
#define API_BATCH_MAX 64u /* requests in one batch */

typedef struct {
    json_t *root;       /* owned: the whole request */
    json_t *id;         /* borrowed: string, integer or null; NULL for a notification */
    const char *method; /* borrowed from root */
    json_t *params;     /* borrowed: an object, or NULL when absent */
    char msgbuf[96];    /* an error message naming a parameter */
} api_req_t;

/*  Parses one line. On failure returns a JSON-RPC error code (<0) and sets
 *  *msg to a static description; req->id is then the request's id if it
 *  could be read (an error must carry it), else NULL. Call api_req_free
 *  either way. */
int api_req_parse(const char *line, size_t len, api_req_t *req, const char **msg);
/*  As api_req_parse, for one value already parsed (a batch's element);
 *  takes ownership of root. */
int api_req_check(json_t *root, api_req_t *req, const char **msg);
void api_req_free(api_req_t *req);

/*  Parameter getters: 0, or API_ERR_PARAMS (wrong type, or missing when
 *  required: *msg says which, "missing parameter: NAME", in req's buffer).
 *  Optional absent ones leave *out unchanged. */
int api_param_str(api_req_t *req, const char *name, bool required, const char **out,
                  const char **msg);
int api_param_uint(api_req_t *req, const char *name, bool required, uint64_t *out,
                   const char **msg);
int api_param_bool(const api_req_t *req, const char *name, bool *out, const char **msg);

/*  {"jsonrpc":"2.0","id":id,"result":result}; steals result. */
json_t *api_result(json_t *id, json_t *result);
/*  {"jsonrpc":"2.0","id":id,"error":{"code","message","data"?}}. */
json_t *api_error(json_t *id, int code, const char *message);
/*  An error for a PARLEY_ERR_* status, with message (or parley_strerror). */
json_t *api_error_parley(json_t *id, int status, const char *message);
/*  {"jsonrpc":"2.0","method":method,"params":params}; steals params. */
json_t *api_notification(const char *method, json_t *params);
/*  Serialises obj compactly with a trailing newline into a malloc'd string. */
char *api_dump_line(const json_t *obj, size_t *len);

/*  The name of a PARLEY_ERR_* code ("malformed", "not_found"...). */
const char *api_status_name(int status);

void api_req_test(bool verbose);

#endif
