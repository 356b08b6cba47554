/* A minimal streaming JSON writer to stdout-like FILE streams.
 *
 * The probe prints exactly one JSON object; the writer tracks only whether a comma is due,
 * so nesting is the caller's responsibility (open/close calls must pair). */
#ifndef PROBE_JSON_H
#define PROBE_JSON_H

#include <stdio.h>

struct jw {
  FILE *out;
  int depth;
  int need_comma[64];
};

void jw_init(struct jw *w, FILE *out);
void jw_obj_open(struct jw *w);
void jw_obj_close(struct jw *w);
void jw_arr_open(struct jw *w);
void jw_arr_close(struct jw *w);
/* Emits the key of the next member inside an object. */
void jw_key(struct jw *w, const char *key);
void jw_str(struct jw *w, const char *s);
/* Emits a string from a buffer that may hold NUL bytes or invalid UTF-8 (escaped as \u00XX). */
void jw_strn(struct jw *w, const char *s, size_t n);
void jw_int(struct jw *w, long long v);
void jw_bool(struct jw *w, int v);
void jw_null(struct jw *w);

/* Shorthands for object members. */
void jw_kstr(struct jw *w, const char *key, const char *s);
void jw_kint(struct jw *w, const char *key, long long v);
void jw_kbool(struct jw *w, const char *key, int v);
void jw_knull(struct jw *w, const char *key);

#endif
