/* status.c: gRPC status code names and the mappings from HTTP status and
 * HTTP/2 error codes (gRPC's http-grpc-status-mapping.md and the RST_STREAM
 * table of PROTOCOL-HTTP2.md). Pure functions, no state. */
#include <baton/error.h>
#include <baton/status.h>

#include <string.h>

static const char *const code_names[] = {
#define BT_GRPC_NAME_(name, value) [value] = #name,
    BT_GRPC_CODE_MAP(BT_GRPC_NAME_)
#undef BT_GRPC_NAME_
};

#define NCODES (sizeof(code_names) / sizeof(code_names[0]))

const char *bt_grpc_code_name(int code) {
  if (code < 0 || (size_t)code >= NCODES)
    return "UNKNOWN_CODE";
  return code_names[code];
}

int bt_grpc_code_from_name(const char *name, size_t len) {
  if (!name)
    return BT_ERR_INVAL;
  for (size_t i = 0; i < NCODES; i++) {
    if (strlen(code_names[i]) == len && memcmp(code_names[i], name, len) == 0)
      return (int)i;
  }
  return BT_ERR_NOTFOUND;
}

int bt_grpc_code_from_http_status(int http_status) {
  switch (http_status) {
  case 400:
    return BT_GRPC_INTERNAL;
  case 401:
    return BT_GRPC_UNAUTHENTICATED;
  case 403:
    return BT_GRPC_PERMISSION_DENIED;
  case 404:
    return BT_GRPC_UNIMPLEMENTED;
  case 429:
  case 502:
  case 503:
  case 504:
    return BT_GRPC_UNAVAILABLE;
  default:
    /* 200 included: a real OK carries grpc-status, so 200 without it is
     * UNKNOWN. */
    return BT_GRPC_UNKNOWN;
  }
}

/* HTTP/2 error codes (RFC 9113 section 7) that map to something other than
 * INTERNAL. */
enum {
  H2_REFUSED_STREAM = 0x7,
  H2_CANCEL = 0x8,
  H2_ENHANCE_YOUR_CALM = 0xb,
  H2_INADEQUATE_SECURITY = 0xc,
};

int bt_grpc_code_from_h2_error(uint32_t h2_error) {
  switch (h2_error) {
  case H2_REFUSED_STREAM:
    /* The stream was never processed: safe to retry. */
    return BT_GRPC_UNAVAILABLE;
  case H2_CANCEL:
    /* The caller decides whether a passed deadline makes it
     * DEADLINE_EXCEEDED instead. */
    return BT_GRPC_CANCELLED;
  case H2_ENHANCE_YOUR_CALM:
    return BT_GRPC_RESOURCE_EXHAUSTED;
  case H2_INADEQUATE_SECURITY:
    return BT_GRPC_PERMISSION_DENIED;
  default:
    /* NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR,
     * SETTINGS_TIMEOUT, FRAME_SIZE_ERROR, COMPRESSION_ERROR, CONNECT_ERROR and
     * unknown codes. A NO_ERROR reset after a complete response is not an
     * error; the caller checks that before mapping. */
    return BT_GRPC_INTERNAL;
  }
}
