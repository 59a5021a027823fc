/* proto.h (gateway/proto): the contract of the protobuf layer — message
 * types loaded at run time from a descriptor set (registry.h) and messages
 * of those types decoded, read and encoded without generated code
 * (dynmsg.h). */
#ifndef GW_PROTO_H
#define GW_PROTO_H

#include "dynmsg.h"
#include "registry.h"

#endif
