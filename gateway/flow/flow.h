/* flow.h (gateway/flow): the folder's contract — flows compiled into plans
 * (flow.c, over expressions: expr.h) and the engine that runs them (engine.c).
 *
 * At load every flow in the config is checked against the descriptors
 * (methods exist, mapped fields exist with assignable types, references
 * name earlier steps, conditions type-check) and turned into a tree of
 * nodes with field pointers resolved, so a request never looks up a name.
 * The engine (engine.c) runs a plan per request. */
#ifndef GW_FLOW_H
#define GW_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include <baton/baton.h>

#include "config/config.h"
#include "expr.h"
#include "proto/proto.h"

typedef struct gw_mapping gw_mapping;

typedef enum {
  GW_SRC_PATH,    /* a field (or a whole message) of the request or a step */
  GW_SRC_LITERAL, /* a constant */
  GW_SRC_NESTED   /* a sub-message built by its own mapping */
} gw_src_kind;

typedef struct gw_map_entry {
  const gw_field *target;
  gw_src_kind kind;
  gw_path path;       /* GW_SRC_PATH */
  gw_value literal;   /* GW_SRC_LITERAL */
  gw_mapping *nested; /* GW_SRC_NESTED */
} gw_map_entry;

struct gw_mapping {
  const gw_message *type;
  size_t n;
  gw_map_entry *entries;
};

typedef struct gw_retry {
  uint32_t attempts; /* in all, the first included; 1 = no retry */
  uint32_t backoff_ms;
  uint32_t max_backoff_ms;
  uint32_t on_codes; /* bit per gRPC code */
} gw_retry;

/* A message with {path} placeholders, for fail. */
typedef struct gw_template_part {
  const char *text; /* literal text, or NULL for a path */
  gw_path path;
} gw_template_part;

typedef struct gw_template {
  size_t n;
  gw_template_part *parts;
} gw_template;

typedef enum {
  GW_NODE_CALL,
  GW_NODE_PARALLEL,
  GW_NODE_IF,
  GW_NODE_FAIL
} gw_node_kind;

typedef struct gw_node gw_node;

typedef struct gw_block {
  size_t n;
  gw_node **nodes;
} gw_block;

struct gw_node {
  gw_node_kind kind;
  int line;
  gw_expr *when; /* optional guard: the node is skipped when false */
  /* CALL */
  const char *name;
  size_t slot;    /* its response's root index in the flow's env */
  size_t backend; /* index into the config's backends */
  const gw_method *method;
  gw_mapping *request;
  uint32_t timeout_ms; /* 0: only the flow's deadline */
  gw_retry retry;
  uint32_t continue_on; /* codes after which the flow goes on (bit per code) */
  gw_node *comp;        /* the compensating call (a CALL node), or NULL */
  int group; /* steps of one parallel group share it (compensated together) */
  /* PARALLEL: CALL children, run at once, joined when all finish */
  gw_node **children;
  size_t n_children;
  /* IF */
  gw_expr *cond;
  gw_block then_block, else_block;
  /* FAIL */
  int code;
  gw_template message;
};

typedef struct gw_flow {
  const gw_method *method; /* the client-facing method */
  int line;
  uint32_t timeout_ms; /* 0: only the client's deadline */
  gw_block body;
  gw_mapping *response;
  /* roots: 0 is "request", then every step in the order written */
  gw_expr_env env;
  size_t n_calls;        /* CALL nodes in the whole plan */
  int saga;              /* some step compensates: the run is logged */
  const gw_node **steps; /* CALL nodes by slot (index 0 unused) */
} gw_flow;

typedef struct gw_flows {
  gw_flow *flows;
  size_t n;
} gw_flows;

/* The flow serving method name ("pkg.Service/Method"), or NULL. */
const gw_flow *gw_flow_find(const gw_flows *flows, const char *name);

/* Compiles every flow of cfg against reg. Errors go to diag (file:line);
 * returns the number of errors. Memory comes from arena. */
int gw_flow_compile_all(const gw_config *cfg, const gw_registry *reg,
                        bt_arena *arena, gw_flows *out, gw_diag *diag);

/* engine.c: serves a flow's client-facing method on the calling worker
 * (see core.h). handlers is the gw_flow; ud is unused. */
void gw_engine_invoke(bt_call *call, const ProtobufCMessage *req,
                      const void *handlers, void *ud);

#endif
