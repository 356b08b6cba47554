#include "json.h"

#include <string.h>

void jw_init(struct jw *w, FILE *out) {
  memset(w, 0, sizeof(*w));
  w->out = out;
}

/* Before a value: a comma if this container already has one, unless a key was just written. */
static void before_value(struct jw *w) {
  if (w->need_comma[w->depth] == 1) fputc(',', w->out);
  w->need_comma[w->depth] = 1;
}

static void open_(struct jw *w, char c) {
  before_value(w);
  fputc(c, w->out);
  if (w->depth < 63) w->depth++;
  w->need_comma[w->depth] = 0;
}

static void close_(struct jw *w, char c) {
  if (w->depth > 0) w->depth--;
  fputc(c, w->out);
}

void jw_obj_open(struct jw *w) { open_(w, '{'); }
void jw_obj_close(struct jw *w) { close_(w, '}'); }
void jw_arr_open(struct jw *w) { open_(w, '['); }
void jw_arr_close(struct jw *w) { close_(w, ']'); }

static void put_escaped(struct jw *w, const char *s, size_t n) {
  fputc('"', w->out);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"': fputs("\\\"", w->out); break;
      case '\\': fputs("\\\\", w->out); break;
      case '\n': fputs("\\n", w->out); break;
      case '\r': fputs("\\r", w->out); break;
      case '\t': fputs("\\t", w->out); break;
      default:
        /* Control bytes and non-ASCII are escaped byte-wise so the output is always valid JSON,
         * whatever the bytes were (a masked file may hold binary data). */
        if (c < 0x20 || c >= 0x7f) fprintf(w->out, "\\u%04x", c);
        else fputc(c, w->out);
    }
  }
  fputc('"', w->out);
}

void jw_key(struct jw *w, const char *key) {
  before_value(w);
  put_escaped(w, key, strlen(key));
  fputc(':', w->out);
  /* The value that follows must not emit a comma. */
  w->need_comma[w->depth] = 2;
}

static void value_prefix(struct jw *w) {
  if (w->need_comma[w->depth] == 2) {
    w->need_comma[w->depth] = 1;
    return;
  }
  before_value(w);
}

void jw_str(struct jw *w, const char *s) {
  if (s == NULL) {
    jw_null(w);
    return;
  }
  value_prefix(w);
  put_escaped(w, s, strlen(s));
}

void jw_strn(struct jw *w, const char *s, size_t n) {
  value_prefix(w);
  put_escaped(w, s, n);
}

void jw_int(struct jw *w, long long v) {
  value_prefix(w);
  fprintf(w->out, "%lld", v);
}

void jw_bool(struct jw *w, int v) {
  value_prefix(w);
  fputs(v ? "true" : "false", w->out);
}

void jw_null(struct jw *w) {
  value_prefix(w);
  fputs("null", w->out);
}

void jw_kstr(struct jw *w, const char *key, const char *s) { jw_key(w, key); jw_str(w, s); }
void jw_kint(struct jw *w, const char *key, long long v) { jw_key(w, key); jw_int(w, v); }
void jw_kbool(struct jw *w, const char *key, int v) { jw_key(w, key); jw_bool(w, v); }
void jw_knull(struct jw *w, const char *key) { jw_key(w, key); jw_null(w); }
