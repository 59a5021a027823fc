/* generate.h: prints a file's Baton stubs, foo.baton.h and foo.baton.c, from
 * its model. One function per emitted section in generate.c. */
#ifndef BATON_GEN_GENERATE_H
#define BATON_GEN_GENERATE_H

#include "emit.h"
#include "model.h"

/* Appends the text of stem.baton.h / stem.baton.c to out. */
void generate_header(emit_buf *out, const model_file *f);
void generate_source(emit_buf *out, const model_file *f);

#endif
