/* baton/baton.h: everything a backend or the gateway includes. */
#ifndef BATON_BATON_H
#define BATON_BATON_H

#include <baton/alloc.h>
#include <baton/arena.h>
#include <baton/client.h>
#include <baton/error.h>
#include <baton/loop.h>
#include <baton/metadata.h>
#include <baton/serve.h>
#include <baton/server.h>
#include <baton/status.h>

#endif
