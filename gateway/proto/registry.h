/* registry.h (gateway/proto): the protobuf types and methods the gateway
 * knows, loaded at run time from a FileDescriptorSet
 * (protoc --include_imports --descriptor_set_out=...), so a new API needs no
 * rebuild. Read-only once loaded: shared by every worker without locks. */
#ifndef GW_REGISTRY_H
#define GW_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

/* Numbering as FieldDescriptorProto.Type. */
typedef enum gw_ftype {
  GW_TYPE_DOUBLE = 1,
  GW_TYPE_FLOAT = 2,
  GW_TYPE_INT64 = 3,
  GW_TYPE_UINT64 = 4,
  GW_TYPE_INT32 = 5,
  GW_TYPE_FIXED64 = 6,
  GW_TYPE_FIXED32 = 7,
  GW_TYPE_BOOL = 8,
  GW_TYPE_STRING = 9,
  GW_TYPE_GROUP = 10,
  GW_TYPE_MESSAGE = 11,
  GW_TYPE_BYTES = 12,
  GW_TYPE_UINT32 = 13,
  GW_TYPE_ENUM = 14,
  GW_TYPE_SFIXED32 = 15,
  GW_TYPE_SFIXED64 = 16,
  GW_TYPE_SINT32 = 17,
  GW_TYPE_SINT64 = 18
} gw_ftype;

typedef struct gw_registry gw_registry;
typedef struct gw_message gw_message;

typedef struct gw_enum {
  const char *full_name; /* "shop.v1.PayStatus" */
  size_t n_values;
  const char **names;
  const int32_t *numbers;
} gw_enum;

typedef struct gw_field {
  const char *name;
  uint32_t number;
  gw_ftype type;
  int repeated;
  int packed; /* repeated scalars: proto3 default packed unless packed=false */
  int has_presence;          /* messages, oneof members, proto3 optional */
  int oneof;                 /* index into the message's oneofs, or -1 (a proto3
                                optional's synthetic oneof is not listed: -1) */
  const gw_message *message; /* MESSAGE / GROUP */
  const gw_enum *enum_type;  /* ENUM */
  uint32_t index;            /* position in the message's fields */
} gw_field;

struct gw_message {
  const char *full_name;  /* "shop.v1.Order" */
  const gw_field *fields; /* in declaration order */
  size_t n_fields;
  int map_entry; /* a map's entry: key = field 1, value = field 2 */
  const char **oneof_names;
  size_t n_oneofs;
  /* Lookup by number without a call (dynmsg's decoder reads it for every
   * tag): when dense_by_number is not NULL, the field numbered n is
   * dense_by_number[n] for n < n_dense (NULL: none) and no field has a
   * larger number. Types whose numbers are too spread out for a table
   * leave it NULL; gw_registry_field_by_number answers for every type. */
  const gw_field *const *dense_by_number;
  uint32_t n_dense;
};

typedef struct gw_method {
  const char *name; /* "shop.v1.Shop/PlaceOrder" */
  const char *path; /* "/shop.v1.Shop/PlaceOrder" */
  const gw_message *input;
  const gw_message *output;
  int client_streaming;
  int server_streaming;
} gw_method;

/* Loads a FileDescriptorSet file. Returns NULL with a sentence in err
 * (unreadable file, not a FileDescriptorSet, a type referenced but not
 * included — "use --include_imports"). Free with gw_registry_free. */
gw_registry *gw_registry_load(const char *path, char *err, size_t errlen);
gw_registry *gw_registry_from_bytes(const uint8_t *data, size_t len, char *err,
                                    size_t errlen);
void gw_registry_free(gw_registry *r);

/* Lookups by name (at load time; the request path never looks up names). */
const gw_message *gw_registry_message(const gw_registry *r,
                                      const char *full_name);
const gw_enum *gw_registry_enum(const gw_registry *r, const char *full_name);
/* name is "pkg.Service/Method", with or without a leading '/'. */
const gw_method *gw_registry_method(const gw_registry *r, const char *name);
/* Calls fn for every method of every service (for listing and routes). */
void gw_registry_each_method(const gw_registry *r,
                             void (*fn)(const gw_method *m, void *ud),
                             void *ud);

const gw_field *gw_registry_field(const gw_message *m, const char *name);
const gw_field *gw_registry_field_by_number(const gw_message *m,
                                            uint32_t number);
/* 0 with *number, or -1 when name is not a value of e. */
int gw_registry_enum_value(const gw_enum *e, const char *name, int32_t *number);
/* The first name for number, or NULL. */
const char *gw_registry_enum_name(const gw_enum *e, int32_t number);
/* The empty instance of m (every field absent): what a decoded message
 * reads as when its sub-message of type m is absent (see dynmsg.h). */
struct gw_msg;
const struct gw_msg *gw_registry_empty_message(const gw_message *m);
/* "int32", "string", "message shop.v1.Order", "repeated string" ... for
 * error messages; written into buf. */
const char *gw_registry_field_type_str(const gw_field *f, char *buf,
                                       size_t len);

#endif
